"""
Django settings for mysite project.
"""
from pathlib import Path
import os

BASE_DIR = Path(__file__).resolve().parent.parent

# SECURITY WARNING: keep the secret key used in production secret!
SECRET_KEY = "django-insecure-7v#k2p!x9q@r4m$w8z&n3j^b6t*c1f(h5s)d0g+y"

DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["shop.example.net", "localhost"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "USER": "shop_app",
        "PASSWORD": "Tr0ub4dor&3-shop",
        "HOST": "db.shop.internal",
        "PORT": "5432",
    },
    "analytics": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "analytics",
        "USER": os.environ.get("ANALYTICS_DB_USER", "analytics"),
        "PASSWORD": os.environ.get("ANALYTICS_DB_PASSWORD", ""),
        "HOST": "analytics.shop.internal",
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "smtp.mailgun.org"
EMAIL_HOST_USER = "postmaster@mg.shop.example.net"
EMAIL_HOST_PASSWORD = "b7e1c94f0a3d52e8f6a1c0b9d4e72a35-2e6c8d1f-7a9b3c5e"

AWS_ACCESS_KEY_ID = "AKIAYMJRXC77IYVK3PQT"
AWS_SECRET_ACCESS_KEY = "era65mVMcE5gOT4eBJuZmEQW3YRLNWUQPjwUaba8"
AWS_STORAGE_BUCKET_NAME = "shop-media-prod"

SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
CSRF_COOKIE_SECURE = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
