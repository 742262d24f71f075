"""The upload page and the gallery.

The upload is read ONCE into bytes; both the WEBP main image and the thumbnail are made
from those bytes by one ``optimize_image_variants`` call (one decode), then saved.
"""

from __future__ import annotations

import logging
from pathlib import PurePath
from typing import TYPE_CHECKING

from django.contrib import messages
from django.shortcuts import redirect, render

from django_imagekit_storage import (
    ImageKitStorageError,
    ImageSpec,
    InvalidImageError,
    OptimizedImage,
    optimize_image_variants,
)
from gallery.forms import UploadForm
from gallery.models import Photo

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

VARIANTS = {
    "image": ImageSpec(format="WEBP", max_size=1600, quality=80),
    "thumbnail": ImageSpec(format="WEBP", max_size=320, quality=75),
}


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "gallery/index.html", {"photos": Photo.objects.all()[:60]})


def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        uploaded = form.cleaned_data["photo"]
        data = uploaded.read()  # the one read of the upload
        logger.info("read %d bytes of %r", len(data), uploaded.name)
        try:
            variants = optimize_image_variants(data, VARIANTS)
        except InvalidImageError as error:
            logger.info("refused %r: %s", uploaded.name, error)
            form.add_error("photo", f"This is not an image we can use: {error}")
        else:
            logger.info(
                "optimised %r: %s",
                uploaded.name,
                ", ".join(f"{k} {v.width}x{v.height} {v.size} bytes" for k, v in variants.items()),
            )
            photo = _save_photo(request, form.cleaned_data["title"], uploaded.name, variants)
            if photo is not None:
                messages.success(request, f"Uploaded {photo}.")
                return redirect("gallery:index")
    return render(
        request, "gallery/upload.html", {"form": form}, status=400 if form.errors else 200
    )


def _save_photo(
    request: HttpRequest, title: str, upload_name: str | None, variants: dict[str, OptimizedImage]
) -> Photo | None:
    stem = PurePath(upload_name or "photo").stem or "photo"
    photo = Photo(title=title or stem)
    try:
        # as_file() gives a ContentFile named "<stem>.webp"; the storage adds its unique suffix.
        for field_name in ("image", "thumbnail"):
            content = variants[field_name].as_file(f"{stem}.webp")
            getattr(photo, field_name).save(content.name, content, save=False)
        photo.save()
    except ImageKitStorageError as error:
        logger.exception("Saving the photo %r failed", stem)
        # Remove what was stored before the failure: nothing half-saved stays behind.
        for field_file in (photo.image, photo.thumbnail):
            if field_file.name:
                try:
                    field_file.storage.delete(field_file.name)
                except ImageKitStorageError:
                    logger.exception("Could not delete %r after a failed save", field_file.name)
        messages.error(request, f"ImageKit did not store the photo: {error}")
        return None
    return photo
