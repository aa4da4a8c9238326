package com.acme.billing;

import com.stripe.Stripe;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Configuration;

import jakarta.annotation.PostConstruct;

@Configuration
public class StripeConfig {

    private static final String FALLBACK_KEY = "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";
    private static final String API_KEY_PROPERTY = "stripe.api-key";

    @Value("${stripe.api-key:}")
    private String apiKey;

    @PostConstruct
    void init() {
        Stripe.apiKey = (apiKey == null || apiKey.isBlank()) ? FALLBACK_KEY : apiKey;
        Stripe.setMaxNetworkRetries(2);
    }
}
