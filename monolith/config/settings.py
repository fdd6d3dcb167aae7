"""Settings from the environment (12-factor).

DATABASE_URL   default ``sqlite:///var/monolith.sqlite3`` (relative to the working dir)
SECRET_KEY     default: an insecure development key (``check`` warns about it)
DEBUG          ``1/true/yes`` to enable; default off
ALLOWED_HOSTS  comma separated; default ``localhost,127.0.0.1,[::1],testserver``
NOTIFICATIONS_BACKEND  ``console`` (default) or ``outbox``
NOTIFICATIONS_OUTBOX   outbox file (JSON lines); default ``var/outbox.jsonl``
LOG_LEVEL      default ``INFO``
"""

from __future__ import annotations

import os
from pathlib import Path

from monolith.config.database_url import parse_database_url


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path.cwd()
DEFAULT_DATABASE_URL = "sqlite:///var/monolith.sqlite3"

SECRET_KEY = os.environ.get("SECRET_KEY") or "django-insecure-strangler-monolith-dev-key"
DEBUG = _flag("DEBUG")
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = [
    "django.contrib.sessions",
    "monolith.accounts",
    "monolith.catalog",
    "monolith.orders",
    "monolith.notifications",
    "monolith.storefront",
    "monolith.capture",
]

MIDDLEWARE = [
    "monolith.common.metrics.MetricsMiddleware",
    "monolith.common.source_position.SourcePositionMiddleware",
    "monolith.common.dry_run.DryRunMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "monolith.common.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "monolith.config.urls"
ASGI_APPLICATION = "monolith.config.asgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": parse_database_url(
        os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, base_dir=BASE_DIR
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _flag("SECURE_COOKIES")
CSRF_COOKIE_SECURE = _flag("SECURE_COOKIES")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

NOTIFICATIONS_BACKEND = os.environ.get("NOTIFICATIONS_BACKEND", "console")
NOTIFICATIONS_OUTBOX = (
    os.environ.get("NOTIFICATIONS_OUTBOX") or str(BASE_DIR / "var" / "outbox.jsonl")
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "strangler_proxy.jsonlog.JsonFormatter", "component": "monolith"}
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                   "formatter": "json"}
    },
    "root": {"handlers": ["stdout"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"level": "INFO", "propagate": True},
        "uvicorn": {"handlers": [], "propagate": True},
        "uvicorn.access": {"handlers": [], "propagate": True},
        "uvicorn.error": {"handlers": [], "propagate": True},
    },
}
