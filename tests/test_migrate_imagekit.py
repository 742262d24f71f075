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
from django_imagekit_storage.orphans import delete_orphans, find_orphans
from django_imagekit_storage.storage import ImageKitStorage
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


class PublicMedia(ImageKitStorage):
    """A project's own storage classes: siblings, neither a subclass of the other."""


class PrivateMedia(ImageKitStorage):
    pass


class TruncatingSource(InMemoryStorage):
    """Its streams end halfway without an error, as a file cut while it is read would."""

    def _open(self, name: str, mode: str = "rb"):  # type: ignore[no-untyped-def]
        data = super()._open(name, mode).read()
        return ContentFile(data[: len(data) // 2], name=name)

    def size(self, name: str) -> int:
        return len(super()._open(name, "rb").read())


class RacingSource(InMemoryStorage):
    """Another run of the command (or a deploy hook) uploads each file just before this one."""

    server: FakeImageKitServer | None = None
    content: bytes | None = None  # what the other run uploads; None: the same bytes

    def _open(self, name: str, mode: str = "rb"):  # type: ignore[no-untyped-def]
        opened = super()._open(name, mode)
        server, path = type(self).server, f"/media/{name}"
        if server is not None and path not in server.files:
            data = opened.read()
            opened.seek(0)
            server.add_file(path, data if self.content is None else self.content)
        return opened


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


def test_verify_catches_a_size_mismatch(ik: FakeImageKitServer) -> None:
    seed(1)
    fields, _ = discover_fields("default")

    def changed_on_imagekit(result: FileResult) -> None:
        # Something replaces the copy after it was made (and checked against the upload's answer).
        if result.name == "docs/0/d0.pdf":
            ik.add_file("/media/docs/0/d0.pdf", b"changed")

    report = migrate_files(
        source=storages["old"], destination=storages["default"], fields=fields,
        source_alias="old", destination_alias="default", verify=True,
        on_result=changed_on_imagekit,
    )  # fmt: skip
    assert report.verified == 2
    assert [(f.name, f.error) for f in report.failed] == [
        ("docs/0/d0.pdf", "verify: the destination holds 7 bytes, the source 34")
    ]
    assert not report.ok


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

    ik.clear_requests()
    out = run("imagekit_orphans", "--delete", "--noinput")
    assert "Deleted 2 file(s) from 'default'." in out
    assert set(ik.files) == {*expected(files), "/media/fresh.jpg", "/elsewhere/old.jpg"}
    # One listing page, then one delete per orphan by its listed file id: no search.
    assert [request.route for request in ik.requests] == ["list", "delete", "delete"]


def test_a_file_uploaded_under_an_orphans_name_after_the_listing_is_kept(
    ik: FakeImageKitServer, tmp_path: Path
) -> None:
    long_ago = datetime.now(timezone.utc) - timedelta(days=3)
    ik.add_file("/media/stray/reused.jpg", b"old orphan", created_at=long_ago)
    ik.add_file("/media/stray/other.jpg", b"another orphan", created_at=long_ago)
    fields, skipped = discover_fields("default")
    storage = storages["default"]
    report = find_orphans(storage, alias="default", fields=fields, skipped_fields=skipped)
    assert [orphan.name for orphan in report.deletable] == ["stray/other.jpg", "stray/reused.jpg"]
    # After the listing, the orphan is deleted and a new upload takes its name (a new file
    # id); no row references it yet: its row may be on its way.
    assert isinstance(storage, ImageKitStorage)
    info = storage.stat("stray/reused.jpg")
    assert info is not None
    assert storage.delete_file(info) is True
    fresh = storage.save_exact("stray/reused.jpg", ContentFile(b"fresh upload"))
    ik.clear_requests()
    delete_orphans(storage, report, fields=fields, skipped_fields=skipped)
    assert report.deleted == ["stray/other.jpg"]
    assert report.already_gone == ["stray/reused.jpg"]
    assert ik.files["/media/stray/reused.jpg"].data == b"fresh upload"
    assert ik.files["/media/stray/reused.jpg"].file_id == fresh.file_id
    assert [request.route for request in ik.requests] == ["delete", "delete"]
    report.write_json(tmp_path / "r.json")
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["already_gone"] == ["stray/reused.jpg"]
    assert written["totals"]["already_gone"] == 1


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


def test_orphans_counts_a_nested_location_of_another_alias(
    ik: FakeImageKitServer, settings
) -> None:
    # 'archive' is ImageKit too, in a folder inside 'default''s location: its rows name files
    # relative to media/private, which 'default' lists as private/...
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django_imagekit_storage.storage.ImageKitStorage",
            "OPTIONS": {"location": "media/private"},
        },
    }
    long_ago = datetime.now(timezone.utc) - timedelta(days=3)
    ik.add_file("/media/private/contract.pdf", b"signed", created_at=long_ago)
    ik.add_file("/media/private/draft.pdf", b"unreferenced", created_at=long_ago)
    ik.add_file("/media/contract.pdf", b"same name, other folder", created_at=long_ago)
    Attachment.objects.create(file="contract.pdf")
    out = run("imagekit_orphans")
    assert "private/contract.pdf" not in out
    assert "private/draft.pdf  [delete]" in out
    assert " contract.pdf  [delete]" in out  # /media/contract.pdf: no row names it

    # A row saved after the listing is looked up under the column's own name, draft.pdf.
    fields, skipped = discover_fields("default")
    storage = storages["default"]
    report = find_orphans(storage, alias="default", fields=fields, skipped_fields=skipped)
    Attachment.objects.create(file="draft.pdf")
    delete_orphans(storage, report, fields=fields, skipped_fields=skipped)
    assert report.now_referenced == ["private/draft.pdf"]
    assert set(ik.files) == {"/media/private/contract.pdf", "/media/private/draft.pdf"}


def test_orphan_deletion_rechecks_each_file_right_before_deleting_it(
    ik: FakeImageKitServer,
) -> None:
    long_ago = datetime.now(timezone.utc) - timedelta(days=3)
    for n in range(3):
        ik.add_file(f"/media/stray/s{n}.jpg", b"x" * 10, created_at=long_ago)
    fields, skipped = discover_fields("default")
    storage = storages["default"]
    report = find_orphans(storage, alias="default", fields=fields, skipped_fields=skipped)
    assert len(report.deletable) == 3
    last = report.deletable[-1].name

    def row_saved_meanwhile(deleted: str) -> None:
        # While the first deletions run, a row starts to reference the last candidate.
        if not Document.objects.filter(file=last).exists():
            Document.objects.create(file=last)

    delete_orphans(
        storage, report, fields=fields, skipped_fields=skipped, on_deleted=row_saved_meanwhile
    )
    assert report.now_referenced == [last]
    assert set(ik.files) == {f"/media/{last}"}


@pytest.mark.parametrize("same", [True, False])
def test_a_file_arriving_after_the_listing(ik: FakeImageKitServer, settings, same: bool) -> None:
    settings.STORAGES = {**settings.STORAGES, "old": {"BACKEND": f"{__name__}.RacingSource"}}
    files = seed(1)
    RacingSource.server, RacingSource.content = ik, None if same else b"other"
    try:
        if same:
            # Already there with the same size: skipped, as if the listing had seen it.
            out = run("imagekit_migrate", "--from", "old")
            assert "with the same size: 3 file(s)" in out
            assert on_imagekit(ik) == expected(files)
        else:
            error, out = run_failing("imagekit_migrate", "--from", "old", "--workers", "1")
            assert error.returncode == 1
            assert "the destination holds a different file of 5 bytes; the source has 34" in out
    finally:
        RacingSource.server = None
    assert ik.count("upload") == 3  # each refused: nothing stored twice


def test_a_short_upload_is_a_failure_not_a_copy(ik: FakeImageKitServer, settings) -> None:
    # ImageKit's answer says how many bytes it kept: fewer than the source's size is not done,
    # with or without --verify.
    settings.STORAGES = {**settings.STORAGES, "old": {"BACKEND": f"{__name__}.TruncatingSource"}}
    seed(1)
    error, out = run_failing("imagekit_migrate", "--from", "old")
    assert error.returncode == 1
    assert "Copied: 0 file(s)" in out
    assert (
        "Failed: photos/p0.jpg (in mediaapp.Photo.image): MigrationError: ImageKit stored 17 "
        "bytes, the source has 34" in out
    )
    assert "--overwrite" in out


def test_dry_run_lists_and_totals_and_uploads_nothing(
    ik: FakeImageKitServer, tmp_path: Path
) -> None:
    files = seed(2)
    ik.add_file("/media/photos/p0.jpg", files["photos/p0.jpg"])
    ik.clear_requests()
    out = run(
        "imagekit_migrate", "--from", "old", "--dry-run", "--report", str(tmp_path / "r.json")
    )
    assert "Would copy docs/0/d1.pdf (34 B)" in out
    assert "Would copy photos/p0.jpg" not in out
    assert "Would copy: 5 file(s), 170 B" in out
    assert "with the same size: 1 file(s)" in out
    assert ik.count() == ik.count("list") == 1  # one listing; no upload, no search
    assert set(ik.files) == {"/media/photos/p0.jpg"}
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["totals"]["would_copy"] == 5
    assert "copied" not in report


def test_orphans_pages_through_every_subfolder(ik: FakeImageKitServer) -> None:
    files = seed(1)
    for name, data in files.items():
        ik.add_file(f"/media/{name}", data)
    for n in range(1100):
        ik.add_file(f"/media/cache/{n % 7}/{n // 7 % 3}/c{n}.jpg", b"x")
    ik.clear_requests()
    out = run("imagekit_orphans")
    assert "Scanned 1103 file(s) on 'default'; 1100 orphan(s), 1.1 KB" in out
    assert "cache/3/0/c1074.jpg  [keep (newer than --older-than)]" in out
    assert ik.count("list") == 2  # pages of 1,000


def test_orphans_counts_sibling_storage_classes_on_imagekit(
    ik: FakeImageKitServer, settings
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.PublicMedia"},
        "archive": {
            "BACKEND": f"{__name__}.PrivateMedia",
            "OPTIONS": {"location": "media/private"},
        },
    }
    long_ago = datetime.now(timezone.utc) - timedelta(days=3)
    ik.add_file("/media/private/contract.pdf", b"signed", created_at=long_ago)
    ik.add_file("/media/private/draft.pdf", b"unreferenced", created_at=long_ago)
    Attachment.objects.create(file="contract.pdf")
    out = run("imagekit_orphans", "--delete", "--noinput")
    assert "Also counting references of mediaapp.Attachment.file" in out
    assert "Deleted 1 file(s)" in out
    assert set(ik.files) == {"/media/private/contract.pdf"}


def test_delete_over_the_whole_library_needs_to_be_asked_for(
    ik: FakeImageKitServer, settings
) -> None:
    # No location: the listing is the whole library, where another project or environment
    # (say staging, in its own folder) keeps files its own database references.
    settings.IMAGEKIT_LOCATION = ""
    settings.STORAGES = {**settings.STORAGES}  # a fresh storage with the new setting
    long_ago = datetime.now(timezone.utc) - timedelta(days=3)
    ik.add_file("/staging/photos/used-by-staging.jpg", b"x", created_at=long_ago)
    error, _ = run_failing("imagekit_orphans", "--delete", "--noinput")
    assert error.returncode == 2
    assert "--whole-library" in str(error)
    assert "/staging/photos/used-by-staging.jpg" in ik.files
    assert "staging/photos/used-by-staging.jpg  [delete]" in run(
        "imagekit_orphans"
    )  # listing is fine
    out = run("imagekit_orphans", "--delete", "--noinput", "--whole-library")
    assert "Deleted 1 file(s)" in out
    assert not ik.files
