"""Models for the migrate and orphans command tests: several file columns on several storages."""

from __future__ import annotations

from django.core.files.storage import Storage, storages
from django.db import models


def archive_storage() -> Storage:
    # A callable, as Django recommends for a named alias.
    return storages["archive"]


class Photo(models.Model):
    image = models.ImageField(upload_to="photos")
    thumbnail = models.FileField(upload_to="thumbs", blank=True, null=True)

    class Meta:
        app_label = "mediaapp"

    def __str__(self) -> str:
        return self.image.name or ""


class Document(models.Model):
    file = models.FileField(upload_to="docs", max_length=200)

    class Meta:
        app_label = "mediaapp"

    def __str__(self) -> str:
        return self.file.name or ""


class Attachment(models.Model):
    file = models.FileField(storage=archive_storage)

    class Meta:
        app_label = "mediaapp"

    def __str__(self) -> str:
        return self.file.name or ""


class PhotoProxy(Photo):
    class Meta:
        app_label = "mediaapp"
        proxy = True
