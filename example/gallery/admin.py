from __future__ import annotations

from django.contrib import admin

from gallery.models import Photo


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = ("__str__", "image", "width", "height", "uploaded_at")
    readonly_fields = ("width", "height", "thumbnail_width", "thumbnail_height", "uploaded_at")
