from __future__ import annotations

from django.db import models


class Document(models.Model):
    file = models.FileField(upload_to="documents/%Y")

    def __str__(self) -> str:
        return self.file.name or ""


class Photo(models.Model):
    image = models.ImageField(
        upload_to="photos", width_field="width", height_field="height", max_length=40
    )
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)

    def __str__(self) -> str:
        return self.image.name or ""
