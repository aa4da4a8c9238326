INSERT INTO organizations (id, name, plan) VALUES
  ('a0b232a2-2836-46d3-a0b9-eff869d056ce', 'Acme Corp', 'pro'),
  ('0bbf4943-f65d-4be2-b891-983cbc765cb3', 'Globex', 'developer');

-- test keys for the staging environment
INSERT INTO api_keys (org_id, name, key_prefix, raw_key, scopes) VALUES
  ((SELECT id FROM organizations WHERE name = 'Acme Corp'), 'ci', 'tk_test_8c1f', 'tk_test_5fe3c57eaf3da8a64c39ea012238642d82da1c98de8c67aec8be30dfd6d63c9b', '{shield:write}'),
  ((SELECT id FROM organizations WHERE name = 'Globex'), 'gateway', 'tk_live_3a9e', 'tk_live_df780e9e89fc353edb1484c3dc3a3e608109fd280de3d8f9ca2b933a5e7c4ed0', '{shield:write,audit:read}');

INSERT INTO join_keys (environment, raw_key) VALUES ('staging', 'jk_bYiDXNF6l412jNgqgHI0D5VBEVv3kYxA1DXA1Wzs');

INSERT INTO integrations (org_id, kind, config) VALUES
  ((SELECT id FROM organizations WHERE name = 'Acme Corp'), 'slack', '{"webhook_url": "https://hooks.slack.com/services/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", "channel": "#alerts"}');
