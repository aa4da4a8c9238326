"""Odds and ends the on-call rotation uses. Credentials inline because the
secrets manager was down during the incident; rotate them afterwards."""
import requests

GITHUB_APP_USER_TOKEN = "ghu_sVT7zvwX1uklYeZuK2wxilBCx24XYM3LUjWW"
GITHUB_APP_REFRESH_TOKEN = "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"
VAULT_TOKEN = "s.jRVFj5opeU0KtFJQuXOLQGer"
DO_OAUTH_TOKEN = "doo_v1_3962c00eedd19f5359fc591ce454400df255ce3a0b835a2d4247b962311dbc40"
SHOPIFY_SHARED_SECRET = "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"
ANTHROPIC_ADMIN_KEY = "sk-ant-admin01-SbyUF2OzrjVdLc7BCtQpy8IWGx-jjSKEuytsWNcQKvWDLbdeVew2x1_dXK07hR1jpYCTk-vT13Tk4YjfrIFX4VwjF3imzAA"
TAKUMO_DEPLOY_TOKEN = "tkdt_fec6beaf_7367ae2779b93f7d8490cabecdcf9314f36c34cb8d287f34acc568aa"
GATEWAY_JOIN_KEY = "jk_neYQIRVxHvcJeCWZXI2kAVuCCWuWR74tf5cGhKzH"


def usage_report(org: str) -> dict:
    r = requests.get(
        "https://api.anthropic.com/v1/organizations/usage_report/messages",
        headers={"x-api-key": ANTHROPIC_ADMIN_KEY, "anthropic-version": "2023-06-01"},
        params={"starting_at": "2024-07-01T00:00:00Z"},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()


def vault_read(path: str) -> dict:
    r = requests.get(f"https://vault.ops.internal:8200/v1/{path}", headers={"X-Vault-Token": VAULT_TOKEN}, timeout=10)
    return r.json()["data"]
