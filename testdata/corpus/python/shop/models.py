import uuid

from django.db import models


class ApiCredential(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64)
    key_prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64)
    token_type = models.CharField(max_length=16, default="bearer")
    created_at = models.DateTimeField(auto_now_add=True)


class Customer(models.Model):
    email = models.EmailField(unique=True)
    password = models.CharField(max_length=128)
    password_changed_at = models.DateTimeField(null=True)
    reset_token = models.CharField(max_length=64, blank=True, default="")
    keyboard_layout = models.CharField(max_length=8, default="us")

    class Meta:
        indexes = [models.Index(fields=["email"])]


class Tokenizer:
    """Splits product titles for the search index."""

    def __init__(self, lowercase=True, max_tokens=64):
        self.lowercase = lowercase
        self.max_tokens = max_tokens

    def __call__(self, text):
        tokens = text.split()
        if self.lowercase:
            tokens = [t.lower() for t in tokens]
        return tokens[: self.max_tokens]
