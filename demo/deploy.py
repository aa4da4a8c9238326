"""Deploys the orders service (demo file: every secret here is fabricated)."""

import requests

GITHUB_TOKEN = "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"
DEPLOY_HOST = "deploy.corp.internal"


def trigger(ref: str) -> None:
    requests.post(
        f"https://{DEPLOY_HOST}/hooks/deploy",
        headers={"Authorization": f"token {GITHUB_TOKEN}"},
        json={"ref": ref},
        timeout=10,
    )
