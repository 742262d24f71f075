"""imagekit_migrate between Django storages: discovery, planning, pool, report, interruption.

The ImageKit destination is exercised in tests/test_migrate_imagekit.py; here the destination is
a FileSystemStorage (the generic path), the source an InMemoryStorage.
"""

from __future__ import annotations

import _thread
import json
import os
import signal
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage, Storage, storages
from django.core.management import CommandError, call_command

from django_imagekit_storage.inventory import (
    FieldRef,
    InventoryError,
    count_referenced,
    discover_fields,
    iter_referenced_names,
)
from django_imagekit_storage.migration import FileResult, MigrationError, Outcome, migrate_files
from django_imagekit_storage.progress import Progress, format_bytes, format_duration
from tests.mediaapp.models import Attachment, Document, Photo

pytestmark = pytest.mark.django_db

FS = "django.core.files.storage.FileSystemStorage"
MEMORY = "django.core.files.storage.InMemoryStorage"


class BrokenSource(InMemoryStorage):
    """A source that fails to open some names (a flaky disk, a denied S3 key)."""

    broken: frozenset[str] = frozenset({"docs/broken.pdf"})

    def _open(self, name: str, mode: str = "rb"):  # type: ignore[no-untyped-def]
        if name in self.broken:
            raise PermissionError(13, "Permission denied", name)
        return super()._open(name, mode)


class BackendError(Exception):
    """A third-party backend's own error type (botocore's ClientError is one)."""


class ThirdPartySource(InMemoryStorage):
    """Raises its own error type, as S3 or GCS backends do: for a missing file's size (older
    django-storages), and for a denied read of one existing file."""

    def size(self, name: str) -> int:
        if not self.exists(name):
            raise BackendError("404 Not Found")
        return len(super()._open(name, "rb").file.getvalue())

    def _open(self, name: str, mode: str = "rb"):  # type: ignore[no-untyped-def]
        if name == "docs/denied.pdf":
            raise BackendError("403 Forbidden")
        return super()._open(name, mode)


class ExitingSource(InMemoryStorage):
    """Raises SystemExit in a copy thread (a library calling sys.exit), which ends the thread."""

    def _open(self, name: str, mode: str = "rb"):  # type: ignore[no-untyped-def]
        if name == "docs/d0.pdf" and threading.current_thread() is not threading.main_thread():
            raise SystemExit(3)
        return super()._open(name, mode)


class InterruptingSource(InMemoryStorage):
    """Sends this process SIGINT when a given file is opened, like a user pressing Ctrl-C."""

    trigger = "docs/d3.pdf"
    signals = 1

    def _open(self, name: str, mode: str = "rb"):  # type: ignore[no-untyped-def]
        # InMemoryStorage.size() opens too: press only once per file.
        if name == self.trigger and mode == "rb" and type(self).signals:
            signals, type(self).signals = type(self).signals, 0
            for press in range(signals):
                if press:
                    time.sleep(0.5)  # Python merges signals that arrive before its handler runs
                signal.raise_signal(signal.SIGINT)
            # raise() signals this thread: give the main thread time to run its handler
            # while this file is still in flight.
            time.sleep(0.5)
        return super()._open(name, mode)


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    """'default' (what the fields use) is a folder; 'old' holds the files now."""
    dest = tmp_path / "dest"
    dest.mkdir()
    # MEDIA_ROOT rather than OPTIONS: Django 4.2/5.0 drop OPTIONS of "default" under overrides.
    settings.MEDIA_ROOT = str(dest)
    settings.STORAGES = {
        "default": {"BACKEND": FS},
        "old": {"BACKEND": MEMORY},
        "archive": {"BACKEND": MEMORY},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return dest


def seed(storage: Storage, name: str, data: bytes) -> None:
    assert storage.save(name, ContentFile(data)) == name


def seed_rows(count: int = 3) -> dict[str, bytes]:
    """Photos and documents whose files are at 'old'; returns name -> bytes."""
    files: dict[str, bytes] = {}
    old = storages["old"]
    for n in range(count):
        image, thumb, doc = f"photos/p{n}.jpg", f"thumbs/p{n}.jpg", f"docs/d{n}.pdf"
        for name, size in ((image, 100 + n), (thumb, 10 + n), (doc, 50 + n)):
            files[name] = bytes([n % 256]) * size
            seed(old, name, files[name])
        Photo.objects.create(image=image, thumbnail=thumb)
        Document.objects.create(file=doc)
    return files


def wait_for_abandoned_threads() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("imagekit-migrate-"):
            thread.join(timeout=10)
            assert not thread.is_alive(), thread.name


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("imagekit_migrate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args: str) -> tuple[CommandError, str]:
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("imagekit_migrate", *args, stdout=out, stderr=StringIO())
    return caught.value, out.getvalue()


def test_discovers_fields_on_the_alias_and_lists_the_others(media: Path) -> None:
    fields, skipped = discover_fields("default")
    # Only this app's columns: other test apps have file fields too.
    assert [ref.label for ref in fields if ref.label.startswith("mediaapp.")] == [
        "mediaapp.Photo.image",
        "mediaapp.Photo.thumbnail",
        "mediaapp.Document.file",
    ]
    assert [(s.label, s.storage) for s in skipped] == [("mediaapp.Attachment.file", "archive")]
    # The callable storage is followed after STORAGES changed, as storages["archive"] is.
    fields, skipped = discover_fields("archive")
    assert [ref.label for ref in fields] == ["mediaapp.Attachment.file"]
    assert {s.storage for s in skipped} == {"default"}


def test_models_option_repeated_adds_models(media: Path) -> None:
    seed_rows(1)
    out, _ = run("--from", "old", "--models", "mediaapp.Document", "--models", "mediaapp.Photo")
    assert "Copying files of mediaapp.Document.file, mediaapp.Photo.image" in out
    assert "Copied: 3 file(s)" in out


def test_models_option_limits_discovery(media: Path) -> None:
    fields, skipped = discover_fields("default", ["mediaapp.Document", "mediaapp.document"])
    assert [ref.label for ref in fields] == ["mediaapp.Document.file"]
    assert skipped == []


@pytest.mark.parametrize("label", ["mediaapp.Nope", "nope.Photo", "Photo"])
def test_unknown_model_is_a_clear_error(media: Path, label: str) -> None:
    with pytest.raises(InventoryError, match=r"app_label\.ModelName"):
        discover_fields("default", [label])


def test_unknown_alias_lists_the_configured_ones(media: Path) -> None:
    with pytest.raises(InventoryError, match=r"'nope'.*'default', 'old', 'archive'"):
        discover_fields("nope")


def test_referenced_names_are_distinct_and_skip_empty_values(media: Path) -> None:
    Photo.objects.create(image="photos/a.jpg", thumbnail="shared.bin")
    Photo.objects.create(image="photos/a.jpg", thumbnail="")
    Photo.objects.create(image="photos/b.jpg", thumbnail=None)
    Document.objects.create(file="shared.bin")
    Attachment.objects.create(file="elsewhere.bin")
    fields, _ = discover_fields("default")
    found = list(iter_referenced_names(fields))
    assert sorted((name, ref.label) for name, ref in found) == [
        ("photos/a.jpg", "mediaapp.Photo.image"),
        ("photos/b.jpg", "mediaapp.Photo.image"),
        ("shared.bin", "mediaapp.Photo.thumbnail"),
    ]
    assert count_referenced(fields) == 4  # an upper bound: shared.bin counted per column


def test_copies_keeping_names_and_second_run_copies_nothing(media: Path, tmp_path: Path) -> None:
    files = seed_rows(3)
    out, err = run("--from", "old", "--report", str(tmp_path / "r1.json"))
    for name, data in files.items():
        assert (media / name).read_bytes() == data
    assert "Copied: 9 file(s)" in out
    assert "Failed: 0" in out
    assert "9/9 files" in err  # the final progress line
    # The listing before the first file can take minutes on a big library: it is announced.
    assert err.startswith("Listing the files 'default' holds already")
    first = json.loads((tmp_path / "r1.json").read_text())
    assert first["totals"]["copied"] == 9
    assert first["totals"]["copied_bytes"] == sum(len(d) for d in files.values())
    assert {entry["name"] for entry in first["copied"]} == set(files)
    assert first["skipped_fields"] == [{"label": "mediaapp.Attachment.file", "storage": "archive"}]

    out, _ = run("--from", "old", "--report", str(tmp_path / "r2.json"))
    second = json.loads((tmp_path / "r2.json").read_text())
    assert second["totals"]["copied"] == 0
    assert second["totals"]["present"] == 9
    assert "Copied: 0 file(s)" in out
    # The source is only read.
    old = storages["old"]
    assert all(old.open(name).read() == data for name, data in files.items())


def test_dry_run_lists_and_totals_without_copying(media: Path, tmp_path: Path) -> None:
    files = seed_rows(2)
    (media / "photos").mkdir()
    (media / "photos/p0.jpg").write_bytes(files["photos/p0.jpg"])  # already there
    out, _ = run("--from", "old", "--dry-run", "--report", str(tmp_path / "r.json"))
    assert "Would copy docs/d1.pdf (51 B)" in out
    assert "Would copy photos/p0.jpg" not in out
    assert "Would copy: 5 file(s)" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["dry_run"] is True
    assert report["totals"]["would_copy"] == 5
    assert report["totals"]["present"] == 1
    assert sorted(p.relative_to(media).as_posix() for p in media.rglob("*.*")) == ["photos/p0.jpg"]


def test_missing_source_files_are_listed_and_do_not_fail(media: Path, tmp_path: Path) -> None:
    seed_rows(1)
    Document.objects.create(file="docs/gone.pdf")
    Photo.objects.create(image="photos/gone.jpg")
    out, _ = run("--from", "old", "--report", str(tmp_path / "r.json"))
    assert "Missing at 'old': docs/gone.pdf (in mediaapp.Document.file)" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert {m["name"] for m in report["missing"]} == {"docs/gone.pdf", "photos/gone.jpg"}
    assert report["totals"]["copied"] == 3


def test_one_failure_does_not_stop_the_run(media: Path, settings, tmp_path: Path) -> None:
    settings.STORAGES = {**settings.STORAGES, "old": {"BACKEND": f"{__name__}.BrokenSource"}}
    files = seed_rows(3)
    seed(storages["old"], "docs/broken.pdf", b"x" * 7)
    Document.objects.create(file="docs/broken.pdf")
    error, out = run_failing(
        "--from", "old", "--workers", "2", "--report", str(tmp_path / "r.json")
    )
    assert error.returncode == 1
    assert "Failed: docs/broken.pdf (in mediaapp.Document.file): PermissionError" in out
    assert all((media / name).is_file() for name in files)
    report = json.loads((tmp_path / "r.json").read_text())
    assert [f["name"] for f in report["failed"]] == ["docs/broken.pdf"]
    assert "Permission denied" in report["failed"][0]["error"]


def test_different_file_at_destination_fails_unless_overwrite(media: Path) -> None:
    seed_rows(1)
    (media / "docs").mkdir()
    (media / "docs/d0.pdf").write_bytes(b"other")
    error, out = run_failing("--from", "old", "--dry-run")  # foretold by --dry-run
    assert error.returncode == 1
    assert "different file of 5 bytes; the source has 50 bytes" in out
    error, out = run_failing("--from", "old")
    assert error.returncode == 1
    assert "different file of 5 bytes; the source has 50 bytes" in out
    assert "--overwrite" in out
    assert (media / "docs/d0.pdf").read_bytes() == b"other"
    out, _ = run("--from", "old", "--overwrite")
    assert (media / "docs/d0.pdf").read_bytes() == b"\x00" * 50


def test_verify_compares_sizes_after_copying(media: Path) -> None:
    seed_rows(2)
    out, _ = run("--from", "old", "--verify")
    assert "Verified on 'default': 6 file(s)" in out


def test_usage_errors_exit_2(media: Path, tmp_path: Path) -> None:
    for args in (
        ("--from", "default"),
        ("--from", "nope"),
        ("--from", "old", "--to", "nope"),
        ("--from", "old", "--models", "mediaapp.Nope"),
        ("--from", "old", "--report", str(tmp_path / "no/such/dir/r.json")),
        ("--from", "old", "--report", str(tmp_path)),  # a folder: refused before copying
    ):
        error, _ = run_failing(*args)
        assert error.returncode == 2, args
    with pytest.raises(CommandError, match="between 1 and 64"):
        call_command("imagekit_migrate", "--from", "old", "--workers", "0")


def test_no_field_on_the_alias_copies_nothing(media: Path, settings) -> None:
    settings.STORAGES = {**settings.STORAGES, "ik": {"BACKEND": MEMORY}}
    out, _ = run("--from", "old", "--to", "ik")
    assert "No FileField or ImageField uses storage 'ik'" in out


def test_stop_event_finishes_in_flight_then_resumes(media: Path) -> None:
    files = seed_rows(20)
    fields, _ = discover_fields("default")
    stop = threading.Event()
    seen: list[FileResult] = []

    def on_result(result: FileResult) -> None:
        seen.append(result)
        if len(seen) == 5:
            stop.set()

    kwargs = {
        "source": storages["old"],
        "destination": storages["default"],
        "fields": fields,
        "source_alias": "old",
        "destination_alias": "default",
    }
    report = migrate_files(**kwargs, workers=3, stop=stop, on_result=on_result)  # type: ignore[arg-type]
    assert report.interrupted
    assert not report.ok
    assert 5 <= len(report.copied) < len(files)
    assert report.abandoned == []  # in-flight copies were let finish
    copied = {p.relative_to(media).as_posix() for p in media.rglob("*.*")}
    assert copied == {name for name, _ in report.copied}

    again = migrate_files(**kwargs, workers=3)  # type: ignore[arg-type]
    assert not again.interrupted
    assert again.present == len(copied)
    assert len(again.copied) == len(files) - len(copied)
    assert {p.relative_to(media).as_posix() for p in media.rglob("*.*")} == set(files)


def test_keyboard_interrupt_abandons_in_flight_cleanly(media: Path) -> None:
    files = seed_rows(10)
    fields, _ = discover_fields("default")
    count = 0

    def on_result(result: FileResult) -> None:
        nonlocal count
        count += 1
        if count == 3:
            raise KeyboardInterrupt

    report = migrate_files(
        source=storages["old"], destination=storages["default"], fields=fields,
        source_alias="old", destination_alias="default", workers=2, on_result=on_result,
    )  # fmt: skip
    assert report.interrupted
    handled = len(report.copied) + len(report.abandoned)
    assert 3 <= handled < len(files)
    # In a real run the process exits here; in this test the abandoned threads keep writing
    # to the (non-atomic) folder storage, so let them end before the re-run lists it.
    wait_for_abandoned_threads()
    again = migrate_files(
        source=storages["old"], destination=storages["default"], fields=fields,
        source_alias="old", destination_alias="default",
    )  # fmt: skip
    assert again.ok
    for name, data in files.items():
        assert (media / name).read_bytes() == data


@pytest.mark.skipif(not hasattr(signal, "raise_signal"), reason="needs signal.raise_signal")
@pytest.mark.parametrize(("presses", "abandons"), [(1, False), (2, True)])
def test_ctrl_c_reports_and_exits_130(
    media: Path, settings, tmp_path: Path, presses: int, abandons: bool
) -> None:
    InterruptingSource.signals = presses
    settings.STORAGES = {**settings.STORAGES, "old": {"BACKEND": f"{__name__}.InterruptingSource"}}
    files = seed_rows(12)
    before = signal.getsignal(signal.SIGINT)
    error, _out = run_failing(
        "--from", "old", "--workers", "1", "--report", str(tmp_path / "r.json")
    )
    assert error.returncode == 130
    assert "run the same command again" in str(error)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["interrupted"] is True
    assert report["totals"]["copied"] < len(files)
    assert bool(report["abandoned"]) is abandons
    assert signal.getsignal(signal.SIGINT) is before  # the previous handler is back
    assert os.getpid()  # still alive: the interrupt was handled

    InterruptingSource.signals = 0
    wait_for_abandoned_threads()
    run("--from", "old")
    for name, data in files.items():
        assert (media / name).read_bytes() == data


def test_progress_bar_on_a_terminal() -> None:
    written: list[str] = []
    now = [0.0]
    progress = Progress(written.append, total=4, tty=True, clock=lambda: now[0], width=4)
    now[0] = 1.0
    progress.advance("copied", 2_000_000)
    assert written[-1] == "\r[#---]  25% 1/4 files  2.0 MB  2.0 MB/s  ETA 0:00:03  (copied 1)\x1b[K"
    now[0] = 1.01
    progress.advance("present", 5, moved=False)  # within the redraw interval: not drawn
    assert len(written) == 1
    progress.finish()
    assert written[-2].startswith("\r[##--]  50% 2/4 files")
    assert written[-1] == "\n"


def test_progress_lines_when_not_a_terminal() -> None:
    written: list[str] = []
    now = [0.0]
    progress = Progress(written.append, total=None, tty=False, interval=10, clock=lambda: now[0])
    for second in range(1, 25):
        now[0] = float(second)
        progress.advance("copied", 1000)
    assert written == [
        "10 files  10.0 KB  1.0 KB/s  (copied 10)\n",
        "20 files  20.0 KB  1.0 KB/s  (copied 20)\n",
    ]


def test_formatting_helpers() -> None:
    assert format_bytes(999) == "999 B"
    assert format_bytes(1_500_000_000) == "1.5 GB"
    assert format_duration(3725.4) == "1:02:05"


def test_field_ref_label() -> None:
    assert FieldRef(Photo, "image").label == "mediaapp.Photo.image"
    assert Outcome.COPIED.value == "copied"


def test_destination_folder_not_created_yet(media: Path, settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "not-yet")
    files = seed_rows(1)
    run("--from", "old")
    assert all((tmp_path / "not-yet" / name).read_bytes() == data for name, data in files.items())


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_drawn_on_a_terminal(media: Path) -> None:
    seed_rows(2)
    err = Terminal()
    call_command("imagekit_migrate", "--from", "old", stdout=StringIO(), stderr=err)
    last = err.getvalue().split("\r")[-1]
    assert last.startswith("[########################] 100% 6/6 files")
    assert "ETA 0:00:00" in last
    assert last.endswith("\x1b[K\n")


def test_stop_after_everything_was_scheduled_is_not_an_interruption(media: Path) -> None:
    seed_rows(1)
    fields, _ = discover_fields("default")
    stop = threading.Event()
    done: list[FileResult] = []

    def on_result(result: FileResult) -> None:
        done.append(result)
        if len(done) == 3:  # the last file
            stop.set()

    report = migrate_files(
        source=storages["old"], destination=storages["default"], fields=fields,
        source_alias="old", destination_alias="default", stop=stop, on_result=on_result,
    )  # fmt: skip
    assert len(report.copied) == 3
    assert not report.interrupted


def test_an_error_outside_the_workers_propagates_and_stops_them(media: Path) -> None:
    seed_rows(3)
    fields, _ = discover_fields("default")

    def on_result(result: FileResult) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        migrate_files(
            source=storages["old"], destination=storages["default"], fields=fields,
            source_alias="old", destination_alias="default", on_result=on_result,
        )  # fmt: skip
    wait_for_abandoned_threads()  # they end: nothing more is queued for them


def test_a_backend_error_of_any_type_is_one_file_failure(
    media: Path, settings, tmp_path: Path
) -> None:
    # Why the worker loop catches Exception: any Django storage can be the source, and their
    # errors share no narrower base. Narrower, this error would end the worker thread.
    settings.STORAGES = {**settings.STORAGES, "old": {"BACKEND": f"{__name__}.ThirdPartySource"}}
    files = seed_rows(2)
    seed(storages["old"], "docs/denied.pdf", b"x" * 9)
    Document.objects.create(file="docs/denied.pdf")
    Document.objects.create(file="docs/gone.pdf")  # missing: the backend's own 404
    error, out = run_failing("--from", "old", "--report", str(tmp_path / "r.json"))
    assert error.returncode == 1
    assert "Failed: docs/denied.pdf (in mediaapp.Document.file): BackendError: 403 Forbidden" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert [m["name"] for m in report["missing"]] == ["docs/gone.pdf"]
    assert [f["name"] for f in report["failed"]] == ["docs/denied.pdf"]
    assert all((media / name).read_bytes() == data for name, data in files.items())


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_copy_thread_that_dies_stops_the_run_instead_of_hanging(media: Path, settings) -> None:
    settings.STORAGES = {**settings.STORAGES, "old": {"BACKEND": f"{__name__}.ExitingSource"}}
    seed_rows(2)
    fields, _ = discover_fields("default")
    # Without the liveness check the run waits forever for the dead thread's file: a
    # watchdog interrupts it so this test fails rather than hangs.
    watchdog = threading.Timer(10, _thread.interrupt_main)
    watchdog.start()
    try:
        with pytest.raises(MigrationError, match="stopped without finishing"):
            migrate_files(
                source=storages["old"], destination=storages["default"], fields=fields,
                source_alias="old", destination_alias="default", workers=2,
            )  # fmt: skip
    finally:
        watchdog.cancel()
    wait_for_abandoned_threads()


def _press_ctrl_c_twice() -> None:
    _thread.interrupt_main()
    time.sleep(0.5)
    _thread.interrupt_main()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_command_says_a_copy_thread_died(media: Path, settings) -> None:
    settings.STORAGES = {**settings.STORAGES, "old": {"BACKEND": f"{__name__}.ExitingSource"}}
    seed_rows(2)
    watchdog = threading.Timer(10, _press_ctrl_c_twice)  # fail, don't hang, without the fix
    watchdog.start()
    try:
        error, _ = run_failing("--from", "old", "--workers", "2")
    finally:
        watchdog.cancel()
    assert error.returncode == 1
    assert "stopped without finishing" in str(error)
    wait_for_abandoned_threads()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_report_that_cannot_be_written_says_the_run_finished(media: Path) -> None:
    files = seed_rows(1)
    error, out = run_failing("--from", "old", "--report", "/dev/full")  # every write: ENOSPC
    assert error.returncode == 1
    assert "Could not write the report to '/dev/full'" in str(error)
    assert "the run itself finished" in str(error)
    assert "Copied: 3 file(s)" in out
    assert all((media / name).read_bytes() == data for name, data in files.items())
