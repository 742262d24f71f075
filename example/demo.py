#!/usr/bin/env python
"""``make demo``: the example project end to end, then ``imagekit_diagnose``.

1. With no IMAGEKIT_* environment variables, starts the stand-in ImageKit server (with them,
   it uses that ImageKit account and deletes what it uploaded at the end).
2. Generates sample images, uploads each through the example's upload page (Django's test
   client: the real view, form, optimiser, storage, SDK and HTTP), then renders the gallery
   and fetches every image it shows over HTTP.
3. Runs ``manage.py imagekit_diagnose`` and prints its report.

Exit status 0 only when every upload, every fetch and every diagnose step passed.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLE_DIR))


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
            print(f"  FAILED: {what}")
        return ok


def sample_images() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, what it is): made here, nothing downloaded."""
    from PIL import Image, ImageDraw

    def gradient(size: tuple[int, int]) -> Image.Image:
        red = Image.linear_gradient("L").resize(size)
        green = Image.radial_gradient("L").resize(size)
        blue = red.transpose(Image.Transpose.ROTATE_90).resize(size)
        return Image.merge("RGB", (red, green, blue))

    def encode(image: Image.Image, format: str, **options: object) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format=format, **options)
        return buffer.getvalue()

    landscape = gradient((3000, 2000))
    ImageDraw.Draw(landscape).ellipse((900, 500, 2100, 1500), fill=(250, 200, 40))

    # Stored sideways with EXIF orientation 6: the optimiser turns it upright.
    portrait = gradient((1800, 1200))
    exif = Image.Exif()
    exif[0x0112] = 6
    logo = Image.new("RGBA", (800, 800), (0, 0, 0, 0))
    ImageDraw.Draw(logo).ellipse((100, 100, 700, 700), fill=(30, 110, 220, 255))
    return {
        "landscape.jpg": (encode(landscape, "JPEG", quality=92), "6 MP JPEG photo"),
        "portrait.jpg": (
            encode(portrait, "JPEG", quality=90, exif=exif),
            "JPEG stored sideways, EXIF orientation 6",
        ),
        "logo.png": (encode(logo, "PNG"), "PNG with transparency"),
        "not-an-image.jpg": (os.urandom(4096), "random bytes named .jpg: must be refused"),
    }


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def upload_and_show(outcome: Outcome) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from django_imagekit_storage.responsive import image_url
    from gallery.models import Photo

    client = Client()
    print("\nUploading sample images through the upload page (/upload/):")
    for name, (data, what) in sample_images().items():
        print(f"- {name}: {what}, {len(data):,} bytes")
        start = time.perf_counter()
        response = client.post(
            "/upload/",
            {"title": Path(name).stem, "photo": SimpleUploadedFile(name, data)},
        )
        elapsed = (time.perf_counter() - start) * 1000
        if name.startswith("not-an-image"):
            refused = response.status_code == 400 and b"not an image" in response.content
            if outcome.check(refused, f"{name} was not refused (HTTP {response.status_code})"):
                print(f"  refused with HTTP 400 as it should be ({elapsed:.0f} ms)")
            continue
        if not outcome.check(
            response.status_code == 302, f"uploading {name} answered HTTP {response.status_code}"
        ):
            continue
        photo = Photo.objects.get(title=Path(name).stem)
        print(f"  stored in {elapsed:.0f} ms (read once, optimised once, two files saved):")
        for label, field_file, width, height in (
            ("image", photo.image, photo.width, photo.height),
            ("thumbnail", photo.thumbnail, photo.thumbnail_width, photo.thumbnail_height),
        ):
            print(f"    {label:<9} {field_file.name}  {width}x{height}, {field_file.size:,} bytes")
        if name == "portrait.jpg":
            outcome.check(photo.height > photo.width, "portrait.jpg was not turned upright (EXIF)")

    print("\nThe gallery page (/) and the images it shows:")
    response = client.get("/")
    if not outcome.check(response.status_code == 200, f"/ answered HTTP {response.status_code}"):
        return
    html = unescape(response.content.decode())
    photos = list(Photo.objects.all())
    outcome.check(len(photos) == 3, f"the gallery lists {len(photos)} photos, not 3")
    for photo in photos:
        # The gallery links the stored image and shows it through {% imagekit_img %}: resized
        # by ImageKit to 320 px wide (the stand-in server answers with the stored bytes).
        for label, url, size in (
            ("320 px", image_url(photo.image, {"w": 320}), None),
            ("image", photo.image.url, photo.image.size),
            ("thumbnail", photo.thumbnail.url, photo.thumbnail.size),
        ):
            if not outcome.check(url in html, f"the gallery does not show {url}"):
                continue
            try:
                status, body = fetch(url)
            except (urllib.error.URLError, OSError) as error:
                outcome.check(False, f"GET {url} failed: {error}")
                continue
            ok = status == 200 and len(body) > 0
            if outcome.check(ok, f"GET {url}: HTTP {status}, {len(body)} bytes"):
                # ImageKit's CDN may re-encode for the client; the stand-in serves the upload.
                if size is None:
                    same = "the w-320 transformation"
                else:
                    same = "as stored" if len(body) == size else "re-encoded by the CDN"
                print(
                    f"  {photo.title:<9} {label:<9} GET {url} -> HTTP {status}, "
                    f"{len(body):,} bytes ({same})"
                )


def diagnose(outcome: Outcome) -> None:
    from django.core.management import CommandError, call_command

    print("\nmanage.py imagekit_diagnose:\n")
    sys.stdout.flush()
    try:
        call_command("imagekit_diagnose", stdout=sys.stdout)
    except CommandError as error:
        outcome.check(False, f"imagekit_diagnose: {error}")


def clean_up() -> None:
    """Delete what the demo stored (it matters on a real account)."""
    from gallery.models import Photo

    deleted = 0
    for photo in Photo.objects.all():
        for field_file in (photo.image, photo.thumbnail):
            if field_file:
                field_file.delete(save=False)
                deleted += 1
        photo.delete()
    print(f"\nCleaned up: deleted the {deleted} files the demo uploaded.")


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from example_project.standin import on_standin, use_standin_unless_configured

    use_standin_unless_configured(quiet=True)
    if on_standin():
        print(
            "No IMAGEKIT_* environment variables: running on the stand-in ImageKit server at "
            f"{os.environ['IMAGEKIT_BASE_URL']} (set IMAGEKIT_PRIVATE_KEY and "
            "IMAGEKIT_URL_ENDPOINT to run this on your ImageKit account)."
        )
    else:
        print(f"Running on the ImageKit account at {os.environ.get('IMAGEKIT_URL_ENDPOINT')}.")
        scratch = tempfile.mkdtemp(prefix="imagekit-demo-")
        os.environ["EXAMPLE_DATABASE"] = str(Path(scratch) / "db.sqlite3")
    os.environ.setdefault("EXAMPLE_IMAGEKIT_LOG_LEVEL", "WARNING")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    # The refused upload below is expected: no "Bad Request" warning for it.
    logging.getLogger("django.request").setLevel(logging.ERROR)

    outcome = Outcome()
    try:
        upload_and_show(outcome)
        diagnose(outcome)
    finally:
        clean_up()
    if outcome.failures:
        print(f"\nmake demo: {len(outcome.failures)} problem(s):")
        for failure in outcome.failures:
            print(f"  - {failure}")
        return 1
    print("\nmake demo: everything passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
