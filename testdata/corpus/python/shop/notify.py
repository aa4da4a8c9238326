import requests
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail

SENDGRID_API_KEY = "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"
MAILGUN_DOMAIN = "mg.shop.example.net"
MAILGUN_API_KEY = "key-7d07f7f866921fd354dbafdf7b7092a6"


def send_receipt(to: str, html: str) -> int:
    message = Mail(from_email="receipts@shop.example.net", to_emails=to, subject="Your receipt", html_content=html)
    return SendGridAPIClient(SENDGRID_API_KEY).send(message).status_code


def send_fallback(to: str, text: str) -> int:
    r = requests.post(
        f"https://api.mailgun.net/v3/{MAILGUN_DOMAIN}/messages",
        auth=("api", MAILGUN_API_KEY),
        data={"from": "receipts@shop.example.net", "to": [to], "subject": "Your receipt", "text": text},
        timeout=10,
    )
    return r.status_code
