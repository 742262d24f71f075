"""imagekit_orphans over Django storages (the ImageKit run is in tests/test_migrate_imagekit.py)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage, storages
from django.core.management import CommandError, call_command

from django_imagekit_storage.inventory import discover_fields, same_backend
from django_imagekit_storage.orphans import delete_orphans, find_orphans
from tests.mediaapp.models import Attachment, Document, Photo

pytestmark = pytest.mark.django_db

MEMORY = "django.core.files.storage.InMemoryStorage"


class StubbornStorage(InMemoryStorage):
    """Refuses to delete one file, as a read-only folder or a revoked key would."""

    def delete(self, name: str) -> None:
        if name == "stray/locked.bin":
            raise PermissionError(13, "Permission denied", name)
        super().delete(name)


class InterruptedStorage(InMemoryStorage):
    """Ctrl-C arrives while one file is being deleted."""

    def delete(self, name: str) -> None:
        if name == "tmp/upload.part":  # the last one listed
            raise KeyboardInterrupt
        super().delete(name)


@pytest.fixture
def media(settings) -> None:
    settings.STORAGES = {
        "default": {"BACKEND": MEMORY},
        "archive": {"BACKEND": MEMORY},
        "spare": {"BACKEND": MEMORY},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def put(name: str, size: int = 10, alias: str = "default") -> None:
    assert storages[alias].save(name, ContentFile(b"x" * size)) == name


def populate() -> None:
    """Referenced: photos/a.jpg, thumbs/a.jpg, docs/a.pdf. Orphans: stray/*, tmp/*, archived.bin."""
    for name in ("photos/a.jpg", "thumbs/a.jpg", "docs/a.pdf"):
        put(name)
    put("stray/one.jpg", 1000)
    put("stray/deep/two.jpg", 2000)
    put("tmp/upload.part", 5)
    put("archived.bin", 7)  # referenced by a column on another storage of the same class
    Photo.objects.create(image="photos/a.jpg", thumbnail="thumbs/a.jpg")
    Photo.objects.create(image="photos/a.jpg")  # two rows, one file
    Document.objects.create(file="docs/a.pdf")
    Attachment.objects.create(file="archived.bin")


def run(*args: str) -> str:
    out = StringIO()
    call_command("imagekit_orphans", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def remaining() -> set[str]:
    storage = storages["default"]
    found, pending = set(), [""]
    while pending:
        folder = pending.pop()
        dirs, files = storage.listdir(folder)
        prefix = f"{folder}/" if folder else ""
        pending += [prefix + d for d in dirs]
        found |= {prefix + f for f in files}
    return found


def test_lists_orphans_with_sizes_and_total_and_deletes_nothing(
    media: None, tmp_path: Path
) -> None:
    populate()
    out = run("--report", str(tmp_path / "r.json"))
    assert "stray/deep/two.jpg  [keep (newer than --older-than)]" in out
    assert "photos/a.jpg" not in out
    assert "archived.bin" not in out  # conservatively counted as referenced
    assert "Also counting references of mediaapp.Attachment.file" in out
    assert "Scanned 7 file(s) on 'default'; 3 orphan(s), 3.0 KB; 0 older than 1 day(s)" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert sorted(o["name"] for o in report["orphans"]) == [
        "stray/deep/two.jpg",
        "stray/one.jpg",
        "tmp/upload.part",
    ]
    assert report["totals"]["orphan_bytes"] == 3005
    assert report["totals"]["deleted"] == 0
    assert len(remaining()) == 7


@pytest.mark.parametrize(
    "args",
    [("--exclude", "tmp/", "stray/deep/"), ("--exclude", "tmp/", "--exclude", "stray/deep/")],
)
def test_exclude_prefixes(media: None, args: tuple[str, ...]) -> None:
    populate()
    # Repeating --exclude adds prefixes (it does not replace the earlier ones).
    out = run(*args, "--delete", "--noinput", "--older-than", "0")
    assert "1 orphan(s)" in out
    assert "2 excluded by prefix" in out
    assert "tmp/upload.part" not in out
    assert {"tmp/upload.part", "stray/deep/two.jpg"} <= remaining()


def test_delete_with_noinput_removes_only_old_orphans(media: None, tmp_path: Path) -> None:
    populate()
    # The default age limit protects files uploaded moments ago.
    out = run("--delete", "--noinput")
    assert "Nothing to delete." in out
    assert len(remaining()) == 7
    out = run("--delete", "--noinput", "--older-than", "0", "--report", str(tmp_path / "r.json"))
    # Each deletion is written as it happens: a trail even if the run is cut short.
    assert "Deleted stray/deep/two.jpg\n" in out
    assert out.index("Deleted stray/one.jpg\n") < out.index("Deleted 3 file(s) from 'default'.")
    assert remaining() == {"photos/a.jpg", "thumbs/a.jpg", "docs/a.pdf", "archived.bin"}
    report = json.loads((tmp_path / "r.json").read_text())
    assert sorted(report["deleted"]) == ["stray/deep/two.jpg", "stray/one.jpg", "tmp/upload.part"]


@pytest.mark.parametrize(("answer", "deleted"), [("no", False), ("", False), ("yes", True)])
def test_delete_asks_first(
    media: None, monkeypatch: pytest.MonkeyPatch, answer: str, deleted: bool
) -> None:
    populate()
    prompts: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or answer)
    out = run("--delete", "--older-than", "0")
    assert prompts == [
        "Delete 3 file(s) (3.0 KB) from 'default'? This cannot be undone. Type 'yes' to continue: "
    ]
    assert ("stray/one.jpg" in remaining()) is not deleted
    assert ("Deletion cancelled" in out) is not deleted


def test_refuses_to_delete_when_no_field_uses_the_alias(media: None) -> None:
    put("lonely.bin", alias="spare")
    with pytest.raises(CommandError, match="refusing to delete") as caught:
        run("--alias", "spare", "--delete", "--noinput", "--older-than", "0")
    assert caught.value.returncode == 2
    assert storages["spare"].exists("lonely.bin")
    assert "lonely.bin" in run("--alias", "spare")  # listing is still allowed


def test_only_files_older_than_the_cutoff_are_deletable(media: None) -> None:
    put("old.bin")
    time.sleep(0.02)
    middle = datetime.now(timezone.utc)
    time.sleep(0.02)
    put("new.bin")
    fields, skipped = discover_fields("default")
    report = find_orphans(
        storages["default"], alias="default", fields=fields, skipped_fields=skipped,
        min_age=timedelta(days=2), now=middle + timedelta(days=2),
    )  # fmt: skip
    assert {(o.name, o.deletable) for o in report.orphans} == {
        ("old.bin", True),
        ("new.bin", False),
    }


def test_a_row_saved_after_the_listing_keeps_its_file(media: None) -> None:
    populate()
    fields, skipped = discover_fields("default")
    report = find_orphans(
        storages["default"], alias="default", fields=fields, skipped_fields=skipped,
        min_age=timedelta(0),
    )  # fmt: skip
    Document.objects.create(file="stray/one.jpg")
    delete_orphans(storages["default"], report, fields=fields, skipped_fields=skipped)
    assert report.now_referenced == ["stray/one.jpg"]
    assert "stray/one.jpg" in remaining()
    assert sorted(report.deleted) == ["stray/deep/two.jpg", "tmp/upload.part"]


def test_a_failed_delete_is_reported_and_the_rest_go_on(media: None, settings) -> None:
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": f"{__name__}.StubbornStorage"}}
    populate()
    put("stray/locked.bin")
    out = StringIO()
    with pytest.raises(CommandError, match="1 file") as caught:
        call_command(
            "imagekit_orphans", "--delete", "--noinput", "--older-than", "0", stdout=out,
            stderr=StringIO(),
        )  # fmt: skip
    assert caught.value.returncode == 1
    assert "Could not delete stray/locked.bin: PermissionError" in out.getvalue()
    assert remaining() == {
        "photos/a.jpg",
        "thumbs/a.jpg",
        "docs/a.pdf",
        "archived.bin",
        "stray/locked.bin",
    }


@pytest.mark.parametrize("value", ["-1", "nan", "soon", "inf", "1e9"])
def test_bad_older_than(media: None, value: str) -> None:
    with pytest.raises(CommandError, match="older-than"):
        run("--older-than", value)


def test_ctrl_c_during_delete_reports_what_is_gone(media: None, settings, tmp_path: Path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.InterruptedStorage"},
    }
    populate()
    out = StringIO()
    try:
        with pytest.raises(CommandError, match="Interrupted") as caught:
            call_command(
                "imagekit_orphans", "--delete", "--noinput", "--older-than", "0",
                "--report", str(tmp_path / "r.json"), stdout=out, stderr=StringIO(),
            )  # fmt: skip
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command without a report")
    assert caught.value.returncode == 130
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["interrupted"] is True
    assert sorted(report["deleted"]) == ["stray/deep/two.jpg", "stray/one.jpg"]
    assert report["totals"]["deleted"] == 2
    assert "tmp/upload.part" in remaining()
    assert "Deleted stray/deep/two.jpg" in out.getvalue()


def test_delete_without_a_terminal_to_ask_says_to_use_noinput(
    media: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate()

    def closed_stdin(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", closed_stdin)
    with pytest.raises(CommandError, match="--noinput") as caught:
        run("--delete", "--older-than", "0")
    assert caught.value.returncode == 2
    assert "stray/one.jpg" in remaining()


@pytest.mark.parametrize("where", ["no/such/dir/r.json", "."])
def test_report_path_that_cannot_be_written_is_refused_first(
    media: None, tmp_path: Path, where: str
) -> None:
    populate()
    with pytest.raises(CommandError, match="--report") as caught:
        run("--delete", "--noinput", "--older-than", "0", "--report", str(tmp_path / where))
    assert caught.value.returncode == 2
    assert len(remaining()) == 7  # nothing deleted


def test_same_backend_means_a_shared_storage_class_below_storage() -> None:
    class Mixin:
        pass

    class A(Mixin, FileSystemStorage):
        pass

    class B(Mixin, FileSystemStorage):
        pass

    class Other(Mixin, Storage):
        pass

    assert same_backend(A(), B())  # siblings, even behind a shared mixin
    assert same_backend(A(), FileSystemStorage())
    assert same_backend(FileSystemStorage(), A())
    assert not same_backend(A(), Other())  # only Storage and a mixin in common
    assert not same_backend(FileSystemStorage(), InMemoryStorage())
