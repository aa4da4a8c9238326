package rules

// Shopify: Admin API access tokens (custom, public and private apps) and app
// shared secrets (prefix + 32 hex).
func shopify() []Rule {
	return []Rule{
		prefixed("shopify-access-token", "Shopify Admin API access token (shpat_)", TOKEN, []string{"shpat_"},
			`[a-fA-F0-9]{32}`, 38,
			[]Sample{
				envSample("SHOPIFY_ACCESS_TOKEN", "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"),
				textSample("curl -H \"X-Shopify-Access-Token: ", "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", "\" https://acme.myshopify.com/admin/api/2026-01/products.json\n"),
			},
			[]string{
				"SHOPIFY_ACCESS_TOKEN=shpat_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"SHOPIFY_ACCESS_TOKEN=shpat_ced4615cd74ffb3d51fb\n",
			}),
		prefixed("shopify-custom-app-token", "Shopify custom app access token (shpca_)", TOKEN, []string{"shpca_"},
			`[a-fA-F0-9]{32}`, 38,
			[]Sample{
				jsonSample("accessToken", "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"),
				yamlSample("shopify_token", "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"),
			},
			[]string{"accessToken: shpca_<token>\n", "accessToken: shpca_7JkC7pKXyHV4vFVFCzQmuJHcUF9qDy9v\n"}),
		prefixed("shopify-private-app-token", "Shopify private app access token (shppa_)", TOKEN, []string{"shppa_"},
			`[a-fA-F0-9]{32}`, 38,
			[]Sample{
				envSample("SHOPIFY_PASSWORD", "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"),
				pySample("SHOPIFY_TOKEN", "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"),
			},
			[]string{"SHOPIFY_PASSWORD=shppa_844aba1969f14e20\n", "SHOPIFY_PASSWORD=shppa_00000000000000000000000000000000\n"}),
		prefixed("shopify-shared-secret", "Shopify app shared secret (shpss_)", SECRET, []string{"shpss_"},
			`[a-fA-F0-9]{32}`, 38,
			[]Sample{
				envSample("SHOPIFY_API_SECRET", "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"),
				tomlSample("client_secret", "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"),
			},
			[]string{"SHOPIFY_API_SECRET=shpss_${SECRET}\n", "SHOPIFY_API_SECRET=shpss_d2932f05234b0b929191ecd48478c5e\n"}),
	}
}
