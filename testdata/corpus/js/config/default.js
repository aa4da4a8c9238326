module.exports = {
  env: 'staging',
  stripe: {
    publishableKey: 'pk_test_51Hc2xLJm3QvNwXb0uXkz8sYq9rTfVbN2mJcKd4hPpLs7eWa1oRy6uGzQ',
    secretKey: 'sk_test_51jTJCsi727CsJOFKcHDxm64vfJguLLlArHeadDNGoAhxYjx0KqRl7lLaImm91uqpjLl7qzxdP42jdytYFShAZfxhCqyDn24bfg',
    webhookSecret: process.env.STRIPE_WEBHOOK_SECRET,
  },
  slack: {
    webhookUrl: 'https://hooks.slack.com/services/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',
    channel: '#payments-alerts',
  },
  redis: {
    url: 'rediss://default:m85fQiHQCQxK6DidBrJBQ3jo8c4BySjy@cache-payments.abc123.ng.0001.euw1.cache.amazonaws.com:6380/0',
  },
  retry: { attempts: 5, backoffMs: 250 },
};
