"""imagekit_migrate and imagekit_orphans end to end: the real storage, SDK and HTTP, against
the stand-in ImageKit server, with sqlite models (tests/mediaapp)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage, storages
from django.core.management import CommandError, call_command

from django_imagekit_storage.inventory import discover_fields
from django_imagekit_storage.migration import FileResult, migrate_files
from django_imagekit_storage.testing.server import FakeImageKitServer
from tests.mediaapp.models import Attachment, Document, Photo

pytestmark = pytest.mark.django_db

MEMORY = "django.core.files.storage.InMemoryStorage"


class ReadRecorder:
    """Wraps a file object and remembers the largest read asked of it."""

    largest = 0
    whole = False

    def __init__(self, wrapped):  # type: ignore[no-untyped-def]
        self._wrapped = wrapped

    def read(self, size: int = -1) -> bytes:
        cls = type(self)
        if size is None or size < 0:
            cls.whole = True
        else:
            cls.largest = max(cls.largest, size)
        return self._wrapped.read(size)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._wrapped, name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._wrapped)


class RecordingSource(InMemoryStorage):
    """A source whose file objects record how they are read."""

    def _open(self, name: str, mode: str = "rb"):  # type: ignore[no-untyped-def]
        opened = super()._open(name, mode)
        opened.file = ReadRecorder(opened.file)
        return opened

    def size(self, name: str) -> int:
        # InMemoryStorage.size() reads through _open: answer without recording.
        return len(super()._open(name, "rb").file.getvalue())


class LyingSource(InMemoryStorage):
    """Reports every size one byte short: what --verify exists to catch."""

    def size(self, name: str) -> int:
        return super().size(name) - 1


@pytest.fixture
def ik(imagekit_settings: FakeImageKitServer, settings) -> FakeImageKitServer:
    """'default' is ImageKit (location 'media') on the stand-in server; 'old' holds the files."""
    settings.IMAGEKIT_LOCATION = "media"
    settings.IMAGEKIT_MAX_RETRIES = 0  # injected faults fail at once
    settings.STORAGES = {
        **settings.STORAGES,
        "old": {"BACKEND": MEMORY},
        "archive": {"BACKEND": MEMORY},
    }
    return imagekit_settings


def seed(count: int, *, alias: str = "old", size: int = 20) -> dict[str, bytes]:
    """Photos (image + thumbnail) and documents with their files at ``alias``."""
    old = storages[alias]
    files: dict[str, bytes] = {}
    photos, documents = [], []
    for n in range(count):
        image, thumb, doc = f"photos/p{n}.jpg", f"thumbs/t{n}.png", f"docs/{n // 100}/d{n}.pdf"
        for name in (image, thumb, doc):
            files[name] = f"{name}:".encode() + bytes(size)
            assert old.save(name, ContentFile(files[name])) == name
        photos.append(Photo(image=image, thumbnail=thumb))
        documents.append(Document(file=doc))
    Photo.objects.bulk_create(photos)
    Document.objects.bulk_create(documents)
    return files


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def run_failing(command: str, *args: str) -> tuple[CommandError, str]:
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(command, *args, stdout=out, stderr=StringIO())
    return caught.value, out.getvalue()


def on_imagekit(server: FakeImageKitServer) -> dict[str, bytes]:
    return {path: stored.data for path, stored in server.files.items()}


def expected(files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"/media/{name}": data for name, data in files.items()}


def test_copies_every_referenced_file_under_its_exact_name(ik: FakeImageKitServer) -> None:
    files = seed(5)
    Photo.objects.create(image="photos/p0.jpg")  # rows pointing at the same file
    Attachment.objects.create(file="elsewhere.bin")  # another storage: skipped
    out = run("imagekit_migrate", "--from", "old", "--verify")
    assert on_imagekit(ik) == expected(files)
    assert ik.count("upload") == len(files)  # each file once, no suffixed duplicate
    assert "Skipping mediaapp.Attachment.file: on storage 'archive'." in out
    assert "Verified on 'default': 15 file(s)" in out
    # The source is only read.
    assert all(storages["old"].open(name).read() == data for name, data in files.items())


def test_second_run_copies_nothing_and_lists_once(ik: FakeImageKitServer) -> None:
    files = seed(10)
    run("imagekit_migrate", "--from", "old")
    ik.clear_requests()
    out = run("imagekit_migrate", "--from", "old")
    assert "Copied: 0 file(s)" in out
    assert "with the same size: 30 file(s)" in out
    assert ik.count("upload") == 0
    # One paginated listing, not a search per file.
    assert ik.count("list") == 1
    assert ik.count() == 1
    assert on_imagekit(ik) == expected(files)


def test_missing_source_files_are_listed_without_failing(
    ik: FakeImageKitServer, tmp_path: Path
) -> None:
    files = seed(2)
    Document.objects.create(file="docs/gone.pdf")
    out = run("imagekit_migrate", "--from", "old", "--report", str(tmp_path / "r.json"))
    assert "Missing at 'old': docs/gone.pdf (in mediaapp.Document.file)" in out
    assert on_imagekit(ik) == expected(files)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["missing"] == [{"name": "docs/gone.pdf", "field": "mediaapp.Document.file"}]
    assert report["totals"]["failed"] == 0


def test_failed_uploads_are_reported_and_a_rerun_completes(
    ik: FakeImageKitServer, tmp_path: Path
) -> None:
    files = seed(10)
    ik.fail("upload", 500, times=3, message="Internal error")
    error, out = run_failing(
        "imagekit_migrate", "--from", "old", "--workers", "3", "--report", str(tmp_path / "r.json")
    )
    assert error.returncode == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["totals"]["failed"] == 3
    assert report["totals"]["copied"] == len(files) - 3
    assert all("500" in failure["error"] for failure in report["failed"])
    assert out.count("Failed: ") == 4  # three files and the total

    ik.clear_requests()
    out = run("imagekit_migrate", "--from", "old")
    assert "Copied: 3 file(s)" in out
    assert ik.count("upload") == 3
    assert on_imagekit(ik) == expected(files)


def test_interrupted_run_resumes_without_duplicates(ik: FakeImageKitServer) -> None:
    files = seed(20)
    fields, _ = discover_fields("default")
    stop = threading.Event()
    done: list[FileResult] = []

    def on_result(result: FileResult) -> None:
        done.append(result)
        if len(done) == 10:
            stop.set()

    kwargs = {
        "source": storages["old"],
        "destination": storages["default"],
        "fields": fields,
        "source_alias": "old",
        "destination_alias": "default",
        "workers": 4,
    }
    first = migrate_files(**kwargs, stop=stop, on_result=on_result)  # type: ignore[arg-type]
    assert first.interrupted
    assert 10 <= len(first.copied) < len(files)
    assert len(ik.files) == len(first.copied)

    ik.clear_requests()
    second = migrate_files(**kwargs)  # type: ignore[arg-type]
    assert second.ok
    assert second.present == len(first.copied)
    assert ik.count("upload") == len(files) - len(first.copied)
    assert on_imagekit(ik) == expected(files)


def test_different_file_on_imagekit_needs_overwrite(ik: FakeImageKitServer) -> None:
    files = seed(1)
    ik.add_file("/media/docs/0/d0.pdf", b"someone else's")
    error, out = run_failing("imagekit_migrate", "--from", "old")
    assert error.returncode == 1
    assert "ImageKitFileExistsError" in out
    assert "--overwrite" in out
    assert ik.files["/media/docs/0/d0.pdf"].data == b"someone else's"
    run("imagekit_migrate", "--from", "old", "--overwrite")
    assert on_imagekit(ik) == expected(files)


def test_verify_catches_a_size_mismatch(ik: FakeImageKitServer, settings) -> None:
    settings.STORAGES = {**settings.STORAGES, "old": {"BACKEND": f"{__name__}.LyingSource"}}
    seed(1)
    error, out = run_failing("imagekit_migrate", "--from", "old", "--verify")
    assert error.returncode == 1
    assert "verify: the destination holds" in out


def test_files_are_streamed_not_read_whole(ik: FakeImageKitServer, settings) -> None:
    settings.STORAGES = {**settings.STORAGES, "old": {"BACKEND": f"{__name__}.RecordingSource"}}
    ReadRecorder.largest, ReadRecorder.whole = 0, False
    big = 3 * 1024 * 1024
    assert storages["old"].save("docs/big.bin", ContentFile(b"\x01" * big)) == "docs/big.bin"
    Document.objects.create(file="docs/big.bin")
    run("imagekit_migrate", "--from", "old")
    assert ik.files["/media/docs/big.bin"].size == big
    assert not ReadRecorder.whole
    assert 0 < ReadRecorder.largest < big


def test_scale_5000_files_across_models(ik: FakeImageKitServer, tmp_path: Path) -> None:
    # 5,001 files in three columns of two models. Most are already on ImageKit (placed
    # directly, as an earlier run would have) so the test stays fast; the whole copy at
    # 1, 4 and 8 workers is benchmarks/bench_migrate.py.
    files = seed(1667, size=8)
    names = sorted(files)
    for name in names[:4800]:
        ik.add_file(f"/media/{name}", files[name])
    ik.clear_requests()
    run("imagekit_migrate", "--from", "old", "--workers", "8", "--report", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["totals"]["referenced"] == 5001
    assert report["totals"]["present"] == 4800
    assert sorted(entry["name"] for entry in report["copied"]) == names[4800:]
    assert ik.count("upload") == 201
    assert ik.count("list") == 5  # 4,800 files listed once, in pages of 1,000
    assert on_imagekit(ik) == expected(files)

    ik.clear_requests()
    out = run("imagekit_migrate", "--from", "old")
    assert "Copied: 0 file(s)" in out
    assert ik.count() == ik.count("list") == 6


def test_orphans_on_imagekit(ik: FakeImageKitServer, tmp_path: Path) -> None:
    files = seed(2)
    run("imagekit_migrate", "--from", "old")
    long_ago = datetime.now(timezone.utc) - timedelta(days=3)
    ik.add_file("/media/stray/old.jpg", b"x" * 300, created_at=long_ago)
    ik.add_file("/media/stray/deeper/old.png", b"x" * 200, created_at=long_ago)
    ik.add_file("/media/fresh.jpg", b"x" * 100)  # just uploaded: its row may be on its way
    ik.add_file("/elsewhere/old.jpg", b"x", created_at=long_ago)  # outside the location
    out = run("imagekit_orphans", "--report", str(tmp_path / "r.json"))
    assert "stray/old.jpg  [delete]" in out
    assert "stray/deeper/old.png  [delete]" in out
    assert "fresh.jpg  [keep (newer than --older-than)]" in out
    assert "elsewhere" not in out
    assert "3 orphan(s), 600 B; 2 older than 1 day(s) (500 B) marked [delete]" in out

    out = run("imagekit_orphans", "--delete", "--noinput")
    assert "Deleted 2 file(s) from 'default'." in out
    assert set(ik.files) == {*expected(files), "/media/fresh.jpg", "/elsewhere/old.jpg"}


def test_names_imagekit_cannot_keep_are_refused_before_uploading(ik: FakeImageKitServer) -> None:
    files = seed(1)
    name = "docs/café menu.pdf"  # Django allows it; ImageKit would store docs/caf__menu.pdf
    assert storages["old"].save(name, ContentFile(b"menu")) == name
    Document.objects.create(file=name)
    error, out = run_failing("imagekit_migrate", "--from", "old", "--dry-run")
    assert "ImageKit would store this name as 'docs/caf__menu.pdf'" in out
    error, out = run_failing("imagekit_migrate", "--from", "old")
    assert error.returncode == 1
    assert "rename the file and its rows first" in out
    assert on_imagekit(ik) == expected(files)  # nothing uploaded under another name


def test_upload_stored_but_answer_lost_is_not_copied_twice(ik: FakeImageKitServer) -> None:
    # ImageKit kept the file, then the connection broke: this run counts it as failed,
    # the next finds it there with the right size and skips it.
    files = seed(1)
    ik.drop("upload", times=1, after_processing=True)
    error, _ = run_failing("imagekit_migrate", "--from", "old", "--workers", "1")
    assert error.returncode == 1
    assert len(ik.files) == 3
    ik.clear_requests()
    out = run("imagekit_migrate", "--from", "old")
    assert "Copied: 0 file(s)" in out
    assert ik.count("upload") == 0
    assert on_imagekit(ik) == expected(files)


def test_with_retries_a_lost_answer_still_succeeds_once(ik: FakeImageKitServer, settings) -> None:
    settings.IMAGEKIT_MAX_RETRIES = 2
    settings.STORAGES = {**settings.STORAGES}  # a fresh storage with the new setting
    files = seed(1)
    ik.drop("upload", times=1, after_processing=True)
    out = run("imagekit_migrate", "--from", "old", "--workers", "1")
    assert "Copied: 3 file(s)" in out
    assert on_imagekit(ik) == expected(files)  # the retry found its own file: no suffix
