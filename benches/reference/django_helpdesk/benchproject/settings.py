"""A minimal Django project around django-helpdesk, for the email import comparison of benches/email_import.rs.

Everything it writes (the SQLite database, attachments) goes under HELPDESK_BENCH_DIR. Production-like where it
matters for speed: DEBUG off (no query log kept in memory), SQLite in WAL mode with synchronous=NORMAL, as
Switchboard runs it. Mail django-helpdesk would send (new-ticket notices to submitters) is built and handed to
Django's dummy backend, which drops it: nothing leaves the machine.
"""
import os
from pathlib import Path

WORK = Path(os.environ.get("HELPDESK_BENCH_DIR", "/tmp/switchboard-django-helpdesk"))
WORK.mkdir(parents=True, exist_ok=True)

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "rest_framework",
    "helpdesk",
]
SITE_ID = 1

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "benchproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": WORK / "helpdesk.sqlite3",
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "static/"
MEDIA_ROOT = WORK / "media"
MEDIA_URL = "media/"

EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
DEFAULT_FROM_EMAIL = "support@acme.test"

# django-helpdesk: no pinax-teams; everything else at its defaults.
HELPDESK_TEAMS_MODE_ENABLED = False

# The queue's logger (django.helpdesk.queue.<slug>) goes to stderr, so the run script can count the messages it
# failed on; the queue's own logging_type sets its level.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.helpdesk": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
}
