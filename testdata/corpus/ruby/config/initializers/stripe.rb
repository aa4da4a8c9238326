Rails.configuration.stripe = {
  publishable_key: ENV.fetch("STRIPE_PUBLISHABLE_KEY", nil),
  secret_key: ENV.fetch("STRIPE_SECRET_KEY") { "sk_live_OqbHsq8pzfYVLqjjACSCJPIW" },
}

Stripe.api_key = Rails.configuration.stripe[:secret_key]
Stripe.max_network_retries = 2

Shopify.configure do |config|
  config.api_key = ENV["SHOPIFY_API_KEY"]
  config.access_token = "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"
  config.api_version = "2024-07"
end
