import os

import stripe

# Keys come from the environment; see docs/configuration.md.
stripe.api_key = os.environ["STRIPE_SECRET_KEY"]
PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET")
API_VERSION = "2024-06-20"


def create_intent(amount_cents: int, currency: str = "eur", idempotency_key: str | None = None):
    return stripe.PaymentIntent.create(
        amount=amount_cents,
        currency=currency,
        automatic_payment_methods={"enabled": True},
        idempotency_key=idempotency_key,
    )


def verify(payload: bytes, sig_header: str):
    if not WEBHOOK_SECRET:
        raise RuntimeError("STRIPE_WEBHOOK_SECRET is not set")
    return stripe.Webhook.construct_event(payload, sig_header, WEBHOOK_SECRET)
