"""Models for the responsive-image tests, never migrated: instances are built in memory."""

from __future__ import annotations

from django.core.files.storage import InMemoryStorage
from django.db import models

memory = InMemoryStorage(base_url="/media/")


class Photo(models.Model):
    image = models.ImageField(
        storage=memory, width_field="image_width", height_field="image_height", blank=True
    )
    image_width = models.PositiveIntegerField(null=True)
    image_height = models.PositiveIntegerField(null=True)
    # No dimension fields: sizes are unknown and must never be read from the file.
    plain = models.ImageField(storage=memory, blank=True)
    document = models.FileField(storage=memory, blank=True)

    class Meta:
        app_label = "responsive_tests"

    def __str__(self) -> str:
        return self.image.name or ""
