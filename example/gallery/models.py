from __future__ import annotations

from django.db import models


class Photo(models.Model):
    """A photo as the upload page stores it: an optimised WEBP and its thumbnail.

    Both files live on the default storage (ImageKit); the dimension fields let templates
    write width/height without downloading anything.
    """

    title = models.CharField(max_length=200, blank=True)
    image = models.ImageField(upload_to="photos/", width_field="width", height_field="height")
    width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # Blank allowed so the admin can add a photo without one; the upload page always makes it.
    thumbnail = models.ImageField(
        upload_to="photos/thumbnails/",
        width_field="thumbnail_width",
        height_field="thumbnail_height",
        blank=True,
    )
    thumbnail_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    thumbnail_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-uploaded_at", "-id")

    def __str__(self) -> str:
        return self.title or self.image.name
