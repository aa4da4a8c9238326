plugins {
    kotlin("jvm") version "2.0.0"
    `maven-publish`
    signing
}

group = "com.acme"
version = "3.1.0"

repositories {
    mavenCentral()
    maven {
        url = uri("https://nexus.acme.internal/repository/maven-releases/")
        credentials {
            username = "deploy"
            password = "Nx-Deploy#2024!rQ7"
        }
    }
}

publishing {
    repositories {
        maven {
            name = "GitHubPackages"
            url = uri("https://maven.pkg.github.com/acme/weather-sdk")
            credentials {
                username = System.getenv("GITHUB_ACTOR")
                password = System.getenv("GITHUB_TOKEN")
            }
        }
    }
}

dependencies {
    implementation("com.squareup.retrofit2:retrofit:2.11.0")
    implementation("com.squareup.okhttp3:okhttp:4.12.0")
    testImplementation(kotlin("test"))
}
