"""FileField and ImageField round trips on ImageKitStorage (sqlite, the stand-in server)."""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

import django
import pytest
from django.core.exceptions import FieldError, ImproperlyConfigured
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


DJANGO_51 = django.VERSION >= (5, 1)


def test_image_field_save_costs_by_django_release(imagekit_settings: FakeImageKitServer) -> None:
    server = imagekit_settings
    server.clear_requests()
    photo = Photo.objects.create(image=ContentFile(png(3, 2), name="p.png"))
    assert (photo.width, photo.height) == (3, 2)
    routes = [request.route for request in server.requests]
    if DJANGO_51:
        # Dimensions come from the content before it is stored: one upload.
        assert routes == ["upload"]
    else:
        # Django 4.2/5.0 re-read them from the stored file: the download costs a request
        # (the name's metadata is cached from the save, so no search).
        assert routes == ["upload", "delivery"]


def test_content_without_a_name_is_not_uploaded(imagekit_settings: FakeImageKitServer) -> None:
    server = imagekit_settings
    server.clear_requests()
    if DJANGO_51:
        with pytest.raises(FieldError, match="name"):
            Document.objects.create(file=ContentFile(b"anonymous"))
    else:
        # Django 4.2/5.0 skip a file without a name silently.
        document = Document.objects.create(file=ContentFile(b"anonymous"))
        assert not Document.objects.get(pk=document.pk).file
    assert server.count() == 0
    assert server.files == {}


def test_a_migration_recreates_the_storage_from_settings(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a migration file holds is evaluated when migrations load: without the keys it
    # can only work where the settings (or the environment) provide them.
    from django.db.migrations.writer import MigrationWriter

    monkeypatch.delenv("IMAGEKIT_PRIVATE_KEY", raising=False)
    storage = ImageKitStorage(
        private_key="private_SENTINEL", url_endpoint="https://ik.imagekit.io/demo"
    )
    text, imports = MigrationWriter.serialize(storage)
    namespace: dict[str, Any] = {}
    exec("\n".join(imports), namespace)  # Django's own serialised output
    settings.IMAGEKIT_PRIVATE_KEY = "private_from_settings"
    recreated = eval(text, namespace)
    assert recreated.settings.private_key == "private_from_settings"
    assert recreated.settings.url_endpoint == "https://ik.imagekit.io/demo"
    settings.IMAGEKIT_PRIVATE_KEY = None
    with pytest.raises(ImproperlyConfigured, match="IMAGEKIT_PRIVATE_KEY"):
        eval(text, namespace)
