"""Settings of the example project: django-imagekit-storage used as a project would use it.

The ImageKit keys are never written here: the storage reads IMAGEKIT_PRIVATE_KEY and
IMAGEKIT_URL_ENDPOINT (and IMAGEKIT_BASE_URL for the stand-in server) from the environment.
manage.py and wsgi.py set them to the stand-in server when none are set.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Only for this example: a real project reads its secret key from the environment.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-insecure-secret-key")
DEBUG = os.environ.get("EXAMPLE_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_imagekit_storage",
    "gallery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # On the stand-in server, a temporary file that lives as long as the server.
        "NAME": os.environ.get("EXAMPLE_DATABASE") or BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

STATIC_URL = "static/"

# Media goes to ImageKit; static files stay with Django.
STORAGES = {
    "default": {
        "BACKEND": "django_imagekit_storage.ImageKitStorage",
        "OPTIONS": {
            # Everything the example stores lands under this folder of the media library.
            "location": "django-imagekit-storage-example",
            "tags": ["django-imagekit-storage-example"],
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The largest upload the gallery accepts (the optimiser refuses larger images anyway).
GALLERY_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = GALLERY_MAX_UPLOAD_BYTES

# The library adds no logging handler: a project shows its pipeline log like this.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_imagekit_storage": {
            "handlers": ["console"],
            "level": os.environ.get("EXAMPLE_IMAGEKIT_LOG_LEVEL", "INFO"),
        },
        # The upload view's own stages: bytes read, optimised, refused.
        "gallery": {
            "handlers": ["console"],
            "level": os.environ.get("EXAMPLE_IMAGEKIT_LOG_LEVEL", "INFO"),
        },
    },
}
