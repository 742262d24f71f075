"""Backends for tests/test_checks.py.

The checks recognise ``ImageKitStorage`` and its subclasses by module and qualname, never by
importing ``storage.py``; this stand-in carries that module and qualname so the tests need
neither the storage nor the SDK.
"""

from __future__ import annotations

from django.core.files.storage import Storage


class ImageKitStorage(Storage):
    def __init__(self, **options: object) -> None:
        self.options = options


ImageKitStorage.__module__ = "django_imagekit_storage.storage"


class ProjectStorage(ImageKitStorage):
    """A project's subclass with an option of its own."""

    def __init__(self, *, bucket_label: str = "", **options: object) -> None:
        super().__init__(**options)
        self.bucket_label = bucket_label


class UnrelatedStorage(Storage):
    pass


def make_storage() -> Storage:
    """A factory function used as BACKEND: not a class, so not recognisable."""
    return UnrelatedStorage()
