"""How fast imagekit_migrate copies, by worker count, against the stand-in ImageKit server.

    python benchmarks/bench_migrate.py [--files 5000] [--size 2000] [--workers 1 4 8] [--latency 20]

Run from the repository root with the package installed (e.g. inside a tox env). Seeds an
in-memory source with ``--files`` files spread over three columns of two models (sqlite in
memory), then copies them to an ``ImageKitStorage`` on a local stand-in server once per worker
count, starting from an empty server each time. Prints files/s and the speed-up over the
first worker count, measured in the same run (absolute numbers depend on the machine; the
ratios are what to compare). ``--latency`` makes the server wait that many milliseconds
before answering each upload, as the network and ImageKit would (0 measures our own overhead,
with client and server competing for the same CPU).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from django_imagekit_storage.testing.server import FakeImageKitServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.mediaapp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--size", type=int, default=2000, help="bytes per file")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--latency", type=float, default=20.0, help="ms per upload answer")
    args = parser.parse_args()

    with FakeImageKitServer() as server:
        _configure(server)
        from django.core.files.base import ContentFile
        from django.core.files.storage import storages
        from django.core.management import call_command
        from tests.mediaapp.models import Document, Photo

        from django_imagekit_storage.inventory import discover_fields
        from django_imagekit_storage.migration import migrate_files

        call_command("migrate", run_syncdb=True, verbosity=0)
        source = storages["old"]
        per_row = max(1, -(-args.files // 3))  # rounded up: at least --files files
        photos, documents = [], []
        for n in range(per_row):
            names = (f"photos/p{n}.jpg", f"thumbs/t{n}.png", f"docs/{n // 500}/d{n}.pdf")
            for name in names:
                source.save(name, ContentFile(bytes([n % 256]) * args.size))
            photos.append(Photo(image=names[0], thumbnail=names[1]))
            documents.append(Document(file=names[2]))
        Photo.objects.bulk_create(photos)
        Document.objects.bulk_create(documents)
        fields, _ = discover_fields("default")
        total = per_row * 3

        print(
            f"{total} files of {args.size} bytes, {args.latency:g} ms per upload answer, "
            f"stand-in server at {server.base_url}"
        )
        baseline: float | None = None
        for workers in args.workers:
            server.reset()
            if args.latency > 0:
                server.stall("upload", args.latency / 1000, times=total, after_processing=True)
            destination = storages["default"]
            started = time.perf_counter()
            report = migrate_files(
                source=source,
                destination=destination,
                fields=fields,
                source_alias="old",
                destination_alias="default",
                workers=workers,
            )
            elapsed = time.perf_counter() - started
            if report.failed or len(report.copied) != total:
                raise SystemExit(f"copy incomplete: {report.to_dict()['totals']}")
            rate = total / elapsed
            baseline = baseline or rate
            print(
                f"workers={workers:<3} {elapsed:7.2f} s  {rate:8.1f} files/s  "
                f"x{rate / baseline:.2f} vs workers={args.workers[0]}"
            )


def _configure(server: FakeImageKitServer) -> None:
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django_imagekit_storage", "tests.mediaapp"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        IMAGEKIT_PRIVATE_KEY=server.private_key,
        IMAGEKIT_URL_ENDPOINT=server.url_endpoint,
        IMAGEKIT_BASE_URL=server.base_url,
        IMAGEKIT_LOCATION="media",
        STORAGES={
            "default": {"BACKEND": "django_imagekit_storage.storage.ImageKitStorage"},
            "old": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
            "archive": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        },
    )
    django.setup()


if __name__ == "__main__":
    main()
