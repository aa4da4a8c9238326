package com.acme.app

import okhttp3.Interceptor
import okhttp3.OkHttpClient
import retrofit2.Retrofit
import retrofit2.converter.moshi.MoshiConverterFactory
import java.util.concurrent.TimeUnit

object NetworkModule {
    private const val BASE_URL = "https://api.acme-weather.example/v2/"
    private const val API_KEY = "5479hVuEexjoeBJnPINVzniHJ1Zbs7qt"

    private val authInterceptor = Interceptor { chain ->
        val req = chain.request().newBuilder()
            .header("X-Api-Key", API_KEY)
            .build()
        chain.proceed(req)
    }

    val client: OkHttpClient = OkHttpClient.Builder()
        .addInterceptor(authInterceptor)
        .connectTimeout(10, TimeUnit.SECONDS)
        .build()

    val retrofit: Retrofit = Retrofit.Builder()
        .baseUrl(BASE_URL)
        .client(client)
        .addConverterFactory(MoshiConverterFactory.create())
        .build()
}
