# examples pasted from the incident channel

# list pipelines
curl -s -H "Authorization: Bearer tk_live_862224fa607a96959eccb2eb1968aa121bac3247a2c241c07c63d0115b4eb1e9" https://api.takumo.example/v1/health

# trigger the nightly job
curl -X POST -u jenkins-trigger:11a7f0c2e9b84d65a3c1f7e2d0b9a8c4d1 \
  "https://ci.acme.example/job/nightly/buildWithParameters?token=nightly"

# fetch the dashboard as admin
curl --user admin:Gr@fana-Adm1n!23 https://grafana.acme.example/api/dashboards/uid/slo

# hugging face inference
curl https://api-inference.huggingface.co/models/distilbert-base-uncased \
  -H "Authorization: Bearer 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" \
  -d '{"inputs": "the tokenizer splits words"}'

# anthropic
curl https://api.anthropic.com/v1/messages \
  -H "x-api-key: sk-ant-api03-s8aBQgE5CNsCrvjDkmHPMy1y4IIR2xT6n5jy1avNMk4U9SYR0GwZ6dZTQjDONitBRaBqvgFG0OTeCR8jMFv1Gf5HxiM9HAA" \
  -H "anthropic-version: 2023-06-01" \
  -H "content-type: application/json" \
  -d '{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"hello"}]}'

# same call but with the key from the environment (fine)
curl https://api.anthropic.com/v1/messages -H "x-api-key: $ANTHROPIC_API_KEY" -H "anthropic-version: 2023-06-01"
