"""FileField and ImageField round trips on ImageKitStorage (sqlite, the stand-in server)."""

from __future__ import annotations

import io
import re
from datetime import datetime

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from django_imagekit_storage.storage import ImageKitStorage
from django_imagekit_storage.testing import FakeImageKitServer
from tests.storage_app.models import Document, Photo

pytestmark = pytest.mark.django_db


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_file_field_round_trip(imagekit_settings: FakeImageKitServer) -> None:
    server = imagekit_settings
    document = Document(file=ContentFile(b"report body", name="my report.txt"))
    server.clear_requests()
    document.save()
    # One upload, nothing else.
    assert [request.route for request in server.requests] == ["upload"]
    year = datetime.now().year
    assert re.fullmatch(rf"documents/{year}/my_report_[A-Za-z0-9]{{9}}\.txt", document.file.name)
    assert server.files[f"/{document.file.name}"].data == b"report body"

    loaded = Document.objects.get(pk=document.pk)
    assert loaded.file.name == document.file.name
    assert loaded.file.url == f"{server.url_endpoint}/{document.file.name}"
    assert loaded.file.size == 11
    with loaded.file.open() as handle:
        assert handle.read() == b"report body"

    name = loaded.file.name
    loaded.file.delete(save=True)
    assert not loaded.file
    assert f"/{name}" not in server.files
    assert Document.objects.get(pk=document.pk).file.name == ""


def test_uploaded_file_assigned_to_a_field(imagekit_settings: FakeImageKitServer) -> None:
    document = Document()
    document.file.save("upload.bin", SimpleUploadedFile("upload.bin", b"\x00\x01\x02"))
    with Document.objects.get(pk=document.pk).file as handle:
        assert handle.read() == b"\x00\x01\x02"


def test_same_name_twice_gives_two_files(imagekit_settings: FakeImageKitServer) -> None:
    first = Document.objects.create(file=ContentFile(b"1", name="same.txt"))
    second = Document.objects.create(file=ContentFile(b"2", name="same.txt"))
    assert first.file.name != second.file.name
    assert len(imagekit_settings.files) == 2


def test_image_field_round_trip(imagekit_settings: FakeImageKitServer) -> None:
    server = imagekit_settings
    photo = Photo.objects.create(image=ContentFile(png(7, 5), name="a very long photo name.png"))
    # max_length=40 holds, the suffix included.
    assert len(photo.image.name) <= 40
    assert re.fullmatch(r"photos/a_very_long_pho[a-z_]*_[A-Za-z0-9]{9}\.png", photo.image.name)
    assert (photo.width, photo.height) == (7, 5)
    stored = server.files[f"/{photo.image.name}"]
    assert (stored.width, stored.height) == (7, 5)

    loaded = Photo.objects.get(pk=photo.pk)
    assert (loaded.width, loaded.height) == (7, 5)
    assert isinstance(default_storage._wrapped, ImageKitStorage)
    # The dimensions read back from the stored bytes: one search, one download.
    default_storage.close()
    server.clear_requests()
    assert (loaded.image.width, loaded.image.height) == (7, 5)
    assert sorted(request.route for request in server.requests) == ["delivery", "list"]


def test_a_migration_never_contains_the_keys() -> None:
    from django.db import models
    from django.db.migrations.writer import MigrationWriter

    storage = ImageKitStorage(
        private_key="private_SENTINEL",
        public_key="public_SENTINEL",
        url_endpoint="https://ik.imagekit.io/demo",
        location="media",
    )
    field = models.FileField(upload_to="docs", storage=storage)
    text, imports = MigrationWriter.serialize(field)
    assert "SENTINEL" not in text
    assert "django_imagekit_storage.storage.ImageKitStorage(" in text
    assert "location='media'" in text
    assert "import django_imagekit_storage.storage" in imports
