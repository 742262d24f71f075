"""Rendering 100 ``imagekit_img`` tags vs 100 ``{{ photo.image.url }}``, as ratios in one run.

    python benchmarks/bench_templates.py [--images 100] [--repeat 30]

Both templates render the same 100 model instances whose images are on an
``ImageKitStorage`` pointed at the stand-in server; the gallery-like baseline writes
``<img src="{{ photo.image.url }}" ...>`` by hand. Target: ``imagekit_img`` (three widths,
so three URLs per image) costs at most 3x the baseline. Also measured: the same with signed
URLs, and ``{{ photo.image.url }}`` on ``FileSystemStorage`` for scale. Rendering must make no
network call: the stand-in server's request log is checked after every template.
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import timeit

import django
from django.conf import settings

TARGET = 3.0


def setup() -> None:
    settings.configure(
        INSTALLED_APPS=["django_imagekit_storage"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        MEDIA_ROOT=tempfile.gettempdir(),
        MEDIA_URL="/media/",
        USE_TZ=True,
    )
    django.setup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    setup()

    from django.core.files.storage import FileSystemStorage
    from django.db import models
    from django.template import engines

    from django_imagekit_storage.storage import ImageKitStorage
    from django_imagekit_storage.testing import FakeImageKitServer

    class Photo(models.Model):
        title = models.CharField(max_length=100)
        image = models.ImageField(width_field="width", height_field="height")
        width = models.PositiveIntegerField(null=True)
        height = models.PositiveIntegerField(null=True)

        class Meta:
            app_label = "benchmarks"

        def __str__(self) -> str:
            return self.title

    engine = engines["django"]
    plain = engine.from_string(
        "{% for p in photos %}"
        '<img src="{{ p.image.url }}" width="{{ p.width }}" height="{{ p.height }}" alt="{{ p.title }}">'
        "{% endfor %}"
    )
    tags = engine.from_string(
        "{% load imagekit_storage %}{% for p in photos %}"
        '{% imagekit_img p.image widths="320,640,1280" sizes="50vw" alt=p.title %}'
        "{% endfor %}"
    )

    def photos(storage: object) -> list[Photo]:
        made = []
        for index in range(args.images):
            photo = Photo(
                title=f"Photo {index} <&>",
                image=f"photos/holiday {index}_Ab3dE9xQz.jpg",
                width=1600,
                height=1200,
            )
            photo.image.storage = storage  # type: ignore[assignment]
            made.append(photo)
        return made

    def seconds(template: object, context: dict[str, object]) -> float:
        render = template.render  # type: ignore[attr-defined]
        render(context)  # warm-up (and the first request-log check below)
        return min(timeit.repeat(lambda: render(context), number=1, repeat=args.repeat))

    failures = []
    with FakeImageKitServer() as server:
        options = {
            "private_key": server.private_key,
            "url_endpoint": server.url_endpoint,
            "base_url": server.base_url,
        }
        public = ImageKitStorage(**options)
        signed = ImageKitStorage(**options, signed_urls=True)
        filesystem = FileSystemStorage()
        results: dict[str, float] = {}
        for label, template, storage in (
            ("{{ p.image.url }} (ImageKit, public)", plain, public),
            ("imagekit_img (ImageKit, public)", tags, public),
            ("{{ p.image.url }} (ImageKit, signed)", plain, signed),
            ("imagekit_img (ImageKit, signed)", tags, signed),
            ("{{ p.image.url }} (FileSystemStorage)", plain, filesystem),
        ):
            server.clear_requests()
            results[label] = seconds(template, {"photos": photos(storage)})
            if server.requests:
                failures.append(f"{label}: {len(server.requests)} network call(s) while rendering")
        public.close()
        signed.close()

    print(f"Rendering {args.images} images, best of {args.repeat} runs:")
    for label, value in results.items():
        print(f"  {label:<40} {value * 1000:8.2f} ms  ({value / args.images * 1e6:6.1f} us/image)")
    for kind in ("public", "signed"):
        ratio = (
            results[f"imagekit_img (ImageKit, {kind})"]
            / results[f"{{{{ p.image.url }}}} (ImageKit, {kind})"]
        )
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(
            f"imagekit_img / {{{{ p.image.url }}}}, {kind}: {ratio:.2f}x (target <= {TARGET}x: {verdict})"
        )
        if ratio > TARGET:
            failures.append(f"{kind}: {ratio:.2f}x > {TARGET}x")
    ratio = (
        results["imagekit_img (ImageKit, public)"]
        / results["{{ p.image.url }} (FileSystemStorage)"]
    )
    print(f"imagekit_img (ImageKit) / {{{{ p.image.url }}}} (FileSystemStorage): {ratio:.2f}x")
    print(
        "Network calls while rendering: "
        + ("none" if not any("network" in f for f in failures) else "SOME")
    )
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
