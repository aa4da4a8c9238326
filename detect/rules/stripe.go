package rules

// Stripe: secret and restricted API keys (live, test, prod) and webhook
// signing secrets. Publishable keys (pk_) are public by design and not
// reported.
func stripe() []Rule {
	return []Rule{
		{
			ID:            "stripe-secret-key",
			Description:   "Stripe secret API key (sk_live_, sk_test_, sk_prod_)",
			Category:      KEY,
			Keywords:      []string{"sk_live_", "sk_test_", "sk_prod_"},
			CaseSensitive: true,
			Pattern:       startWord + `(sk_(?:live|test|prod)_[A-Za-z0-9]{20,247})` + endWord,
			SecretGroup:   1,
			MaxLen:        260,
			Validate:      All(NotPlaceholder, MinEntropy(3.5), notStripeDocsKey),
			Positives: []Sample{
				envSample("STRIPE_SECRET_KEY", "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"),
				jsSample("stripeKey", "sk_test_510CxzzzDqsRM7oTjgigXkfMlebYSxJaFbEn3OuiFQVNXYrxww3CYrybl4Y1E3nzbAZWF8LLQPwYdXzUc4Dfy89JSFqswn5zq0A"),
				textSample("stripe.api_key = \"", "sk_live_CIXROJHDrfnW43FddC1vGjKw", "\"\n"),
			},
			Negatives: []string{
				"stripe.api_key = \"sk_test_4eC39HqLyjWDarjtT1zdp7dc\"\n",
				"STRIPE_SECRET_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx\n",
				"STRIPE_SECRET_KEY=sk_live_...\n",
				"STRIPE_PUBLISHABLE_KEY=pk_live_51VT2L8putToWvjFfPLtkbVifzKDZLSnDHBrYbOS4N291BIEr0f5K60rxKQHSte4aeeLTfLvoBEEFhq0kRoAQ3cWrJrKuLCIKTm\n",
			},
		},
		{
			ID:            "stripe-restricted-key",
			Description:   "Stripe restricted API key (rk_live_, rk_test_, rk_prod_)",
			Category:      KEY,
			Keywords:      []string{"rk_live_", "rk_test_", "rk_prod_"},
			CaseSensitive: true,
			Pattern:       startWord + `(rk_(?:live|test|prod)_[A-Za-z0-9]{20,247})` + endWord,
			SecretGroup:   1,
			MaxLen:        260,
			Validate:      All(NotPlaceholder, MinEntropy(3.5)),
			Positives: []Sample{
				yamlSample("stripe_restricted_key", "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"),
				goShortSample("key", "rk_test_niZwiFsdnLM5wnpauytcOhqu"),
			},
			Negatives: []string{
				"key: rk_live_<restricted-key>\n",
				"key: rk_live_cycEBYoYFq\n",
				"key: rk_live_0000000000000000000000000000\n",
			},
		},
		{
			ID:            "stripe-webhook-secret",
			Description:   "Stripe webhook signing secret (whsec_)",
			Category:      SECRET,
			Keywords:      []string{"whsec_"},
			CaseSensitive: true,
			Pattern:       startWord + `(whsec_[A-Za-z0-9+/]{32,100}={0,2})` + `(?:[^A-Za-z0-9+/=_-]|$)`,
			SecretGroup:   1,
			MaxLen:        120,
			Validate:      All(NotPlaceholder, MinEntropy(3.5)),
			Positives: []Sample{
				envSample("STRIPE_WEBHOOK_SECRET", "whsec_Y1eJKnhpJGfE4Fq4S5oEVR6EJnFxMxw0"),
				pySample("endpoint_secret", "whsec_OaTjmrptYTPxHIsRKKdT+GBqxf7T261MKGgmNRo1"),
			},
			Negatives: []string{
				"STRIPE_WEBHOOK_SECRET=whsec_...\n",
				"endpoint_secret = 'whsec_prpL5CZwZufjqNgv'\n",
				"endpoint_secret = 'whsec_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\n",
			},
		},
	}
}

// notStripeDocsKey refuses the test key printed throughout Stripe's
// documentation.
func notStripeDocsKey(b []byte) bool { return string(b) != "sk_test_4eC39HqLyjWDarjtT1zdp7dc" }
