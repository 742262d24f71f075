"""The example project's upload page and gallery, through Django's test client.

The example's own app, views, templates and URLs run here with the test settings' database;
media goes through the real ImageKitStorage to the stand-in server.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import InMemoryUploadedFile, SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.core.management import call_command

from django_imagekit_storage.responsive import image_url

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "example"


@pytest.fixture
def example_site(settings, imagekit_settings):
    """The example's apps, URLs, middleware and templates on top of the test settings."""
    sys.path.insert(0, str(EXAMPLE_DIR))
    try:
        from example_project import settings as example_settings

        settings.INSTALLED_APPS = example_settings.INSTALLED_APPS
        settings.MIDDLEWARE = example_settings.MIDDLEWARE
        settings.TEMPLATES = example_settings.TEMPLATES
        settings.ROOT_URLCONF = example_settings.ROOT_URLCONF
        settings.GALLERY_MAX_UPLOAD_BYTES = example_settings.GALLERY_MAX_UPLOAD_BYTES
        call_command("migrate", interactive=False, verbosity=0, run_syncdb=True)
        yield imagekit_settings
        # While the example's apps are still installed: the test database's own flush
        # runs after the settings are restored and would not see the gallery's table.
        call_command("flush", interactive=False, verbosity=0)
    finally:
        sys.path.remove(str(EXAMPLE_DIR))


def jpeg(size: tuple[int, int], exif_orientation: int | None = None) -> bytes:
    from PIL import Image

    image = Image.linear_gradient("L").resize(size).convert("RGB")
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": 85}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


class CountingFile(InMemoryUploadedFile):
    """An upload that counts how often the view reads it: once is the point of the example."""

    reads = 0

    def read(self, *args, **kwargs):
        type(self).reads += 1
        return self.file.read(*args, **kwargs)


class CountingUploadHandler(MemoryFileUploadHandler):
    """Django's in-memory upload handler, handing the view ``CountingFile`` objects."""

    def file_complete(self, file_size):
        if not self.activated:
            return None
        self.file.seek(0)
        return CountingFile(
            file=self.file,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )


@pytest.mark.django_db(transaction=True)
def test_upload_makes_webp_image_and_thumbnail_and_the_gallery_shows_them(
    example_site, client, settings
):
    from gallery.models import Photo

    server = example_site
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.CountingUploadHandler"]
    CountingFile.reads = 0
    upload = SimpleUploadedFile("Holiday Photo.jpg", jpeg((1200, 2000)), content_type="image/jpeg")
    response = client.post("/upload/", {"title": "Beach", "photo": upload})
    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == "/"
    assert CountingFile.reads == 1  # the view read the upload once, for both variants

    photo = Photo.objects.get()
    assert photo.title == "Beach"
    assert photo.image.name.startswith("photos/Holiday_Photo")
    assert photo.image.name.endswith(".webp")
    assert photo.thumbnail.name.startswith("photos/thumbnails/Holiday_Photo")
    assert (photo.width, photo.height) == (960, 1600)
    assert (photo.thumbnail_width, photo.thumbnail_height) == (192, 320)

    # Both variants are on the stand-in server, as WEBP, under their stored names.
    stored = {path.lstrip("/"): file for path, file in server.files.items()}
    assert set(stored) == {photo.image.name, photo.thumbnail.name}
    assert all(file.data[8:12] == b"WEBP" for file in stored.values())
    assert server.count("upload") == 2

    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    # The gallery links the image and shows it resized by ImageKit ({% imagekit_img %}).
    shown = image_url(photo.image, {"w": 320})
    assert "?tr=w-320" in shown
    assert f'src="{shown.replace("&", "&amp;")}"' in html
    assert 'width="320" height="533"' in html
    assert photo.image.url.replace("&", "&amp;") in html
    assert photo.thumbnail.url.startswith(server.url_endpoint + "/photos/thumbnails/")


@pytest.mark.django_db(transaction=True)
def test_exif_orientation_is_applied(example_site, client):
    from gallery.models import Photo

    upload = SimpleUploadedFile("sideways.jpg", jpeg((2000, 1200), exif_orientation=6))
    assert client.post("/upload/", {"photo": upload}).status_code == 302
    photo = Photo.objects.get()
    assert photo.title == "sideways"
    assert photo.height > photo.width


@pytest.mark.django_db(transaction=True)
def test_not_an_image_is_refused_and_nothing_is_stored(example_site, client):
    from gallery.models import Photo

    upload = SimpleUploadedFile("evil.jpg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    response = client.post("/upload/", {"photo": upload})
    assert response.status_code == 400
    assert "not an image we can use" in response.content.decode()
    assert not Photo.objects.exists()
    assert example_site.count("upload") == 0


@pytest.mark.django_db(transaction=True)
def test_a_failed_upload_leaves_nothing_behind(example_site, client, settings):
    from gallery.models import Photo

    settings.IMAGEKIT_MAX_RETRIES = 0
    example_site.fail("upload", status=500, times=1)
    upload = SimpleUploadedFile("a.jpg", jpeg((800, 600)))
    response = client.post("/upload/", {"photo": upload}, follow=True)
    assert "ImageKit did not store the photo" in response.content.decode()
    assert not Photo.objects.exists()
    assert dict(example_site.files) == {}


@pytest.mark.django_db(transaction=True)
def test_a_failed_thumbnail_upload_deletes_the_stored_main_image(
    example_site, client, settings, caplog
):
    from gallery.models import Photo

    settings.IMAGEKIT_MAX_RETRIES = 0
    # The main image's upload goes through; the thumbnail's fails.
    example_site.fail("upload", 503, skip=1, message="Down for a bit.", help="Try later.")
    upload = SimpleUploadedFile("a.jpg", jpeg((800, 600)))
    with caplog.at_level(logging.INFO, logger="django_imagekit_storage"):
        response = client.post("/upload/", {"photo": upload}, follow=True)
    assert "ImageKit did not store the photo" in response.content.decode()
    assert "Down for a bit." in response.content.decode()
    assert example_site.count("upload") == 2
    assert example_site.count("delete") + example_site.count("bulk_delete") == 1
    assert dict(example_site.files) == {}  # the main image did not stay behind
    assert not Photo.objects.exists()
    # The failure is logged with ImageKit's message and help.
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("Down for a bit." in m and "Try later." in m for m in errors), errors


@pytest.mark.django_db(transaction=True)
def test_one_upload_is_read_once_decoded_once_and_each_stage_logged(example_site, client, caplog):
    upload = SimpleUploadedFile("stages.jpg", jpeg((1200, 900)))
    with caplog.at_level(logging.DEBUG):
        assert client.post("/upload/", {"photo": upload}).status_code == 302
    ours = [
        (r.name, r.getMessage())
        for r in caplog.records
        if r.name.startswith(("django_imagekit_storage", "gallery"))
    ]
    # One optimize_image_variants call: one open and one decode for both files.
    assert sum(m.startswith("open ") for _, m in ours) == 1
    assert sum(m.startswith("decode at") for _, m in ours) == 1
    stages = [
        ("gallery.views", "read "),
        ("django_imagekit_storage.images", "decode at"),
        ("django_imagekit_storage.images", "encode 'image'"),
        ("django_imagekit_storage.images", "encode 'thumbnail'"),
        ("django_imagekit_storage.storage", "uploading "),
        ("django_imagekit_storage.client", "ImageKit upload of "),
        ("django_imagekit_storage.storage", "uploaded "),
        ("django_imagekit_storage.storage", "uploading "),
        ("django_imagekit_storage.storage", "uploaded "),
    ]
    position = 0
    for logger_name, start in stages:  # in this order (other lines may come between)
        found = [
            i
            for i, (name, message) in enumerate(ours)
            if i >= position and name == logger_name and message.startswith(start)
        ]
        assert found, (logger_name, start, ours[position:])
        position = found[0] + 1
    infos = [m for _, m in ours if m.startswith("uploaded ")]
    assert len(infos) == 2


@pytest.mark.django_db(transaction=True)
def test_the_admin_lists_shows_and_adds_photos(example_site, client, django_user_model):
    from gallery.models import Photo

    client.post(
        "/upload/", {"title": "Beach", "photo": SimpleUploadedFile("b.jpg", jpeg((64, 48)))}
    )
    photo = Photo.objects.get()
    client.force_login(django_user_model.objects.create_superuser("admin", "a@example.com", "pw"))
    listing = client.get("/admin/gallery/photo/")
    assert listing.status_code == 200
    assert "Beach" in listing.content.decode()
    change = client.get(f"/admin/gallery/photo/{photo.pk}/change/")
    assert change.status_code == 200
    assert photo.image.url.replace("&", "&amp;") in change.content.decode()
    # Adding through the admin stores the file on ImageKit as the upload page does.
    added = client.post(
        "/admin/gallery/photo/add/",
        {"title": "From admin", "image": SimpleUploadedFile("admin.jpg", jpeg((40, 30)))},
    )
    assert added.status_code == 302, added.content.decode()
    made = Photo.objects.get(title="From admin")
    assert (made.width, made.height) == (40, 30)
    assert "/" + made.image.name in example_site.files


@pytest.mark.django_db(transaction=True)
def test_gallery_and_upload_pages_render_empty(example_site, client):
    assert "No photos yet" in client.get("/").content.decode()
    assert 'type="file"' in client.get("/upload/").content.decode()


def test_the_stand_in_starts_once_and_processes_started_from_here_reuse_it(monkeypatch):
    sys.path.insert(0, str(EXAMPLE_DIR))
    try:
        from example_project import standin
    finally:
        sys.path.remove(str(EXAMPLE_DIR))
    exported = (
        "IMAGEKIT_PRIVATE_KEY",
        "IMAGEKIT_URL_ENDPOINT",
        "IMAGEKIT_BASE_URL",
        standin.STANDIN_MARKER,
        standin.DATABASE_VARIABLE,
    )
    for name in exported:
        # Empty counts as unset; monkeypatch removes what the stand-in exports afterwards.
        monkeypatch.setenv(name, "")

    server = standin.use_standin_unless_configured(quiet=True)
    assert server is not None
    try:
        assert os.environ["IMAGEKIT_BASE_URL"] == server.base_url
        assert os.environ["IMAGEKIT_URL_ENDPOINT"] == server.url_endpoint
        assert os.environ["IMAGEKIT_PRIVATE_KEY"] == server.private_key
        assert os.environ["IMAGEKIT_PRIVATE_KEY"].startswith("private_")
        assert standin.on_standin()
        # runserver's autoreloader child inherits these variables: it starts no second server.
        assert standin.use_standin_unless_configured(quiet=True) is None
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_the_stand_in_database_gets_an_admin_to_log_in_with(example_site, client):
    from example_project.standin import prepare_database

    password = prepare_database(quiet=True)
    assert password
    assert client.login(username="admin", password=password)
    assert client.get("/admin/gallery/photo/").status_code == 200
    assert prepare_database(quiet=True) is None  # once per database


def test_manage_py_on_the_stand_in_creates_the_admin_and_prints_its_password():
    import subprocess

    # manage.py as a person runs it: no IMAGEKIT_* variables, the example's own settings.
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("IMAGEKIT_", "EXAMPLE_", "DJANGO_SETTINGS_MODULE"))
    }
    code = (
        "from django.contrib.auth import get_user_model; "
        "print(get_user_model().objects.get(username='admin').is_superuser)"
    )
    done = subprocess.run(
        [sys.executable, str(EXAMPLE_DIR / "manage.py"), "shell", "-c", code],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "True"  # 5.2+ shells say what they imported first
    assert "user 'admin', password '" in done.stderr


def test_with_imagekit_variables_the_stand_in_is_not_started(monkeypatch):
    sys.path.insert(0, str(EXAMPLE_DIR))
    try:
        from example_project import standin
    finally:
        sys.path.remove(str(EXAMPLE_DIR))
    monkeypatch.setenv("IMAGEKIT_PRIVATE_KEY", "private_from_the_account")
    monkeypatch.delenv(standin.STANDIN_MARKER, raising=False)
    assert standin.use_standin_unless_configured(quiet=True) is None
    assert not standin.on_standin()
