"""``manage.py imagekit_diagnose``: every step passing and failing, the output forms, exit codes.

The round trips go through the real storage, the real SDK and real HTTP to the stand-in
ImageKit server; nothing of this library is replaced.
"""

from __future__ import annotations

import io
import json
import socket

import django
import pytest
from django.core.management import CommandError, call_command

from django_imagekit_storage.diagnose import DIAGNOSTICS_FOLDER, STEPS, run_diagnose
from django_imagekit_storage.diagnose_output import (
    encodable,
    render_text,
    stream_supports,
    stream_wants_colour,
)
from django_imagekit_storage.storage import ImageKitStorage
from django_imagekit_storage.testing import FakeImageKitServer
from tests.fake_keys import fake_key

BACKEND = "django_imagekit_storage.ImageKitStorage"
# Shaped like real ImageKit keys, so a leak of any part of them would show.
PRIVATE_KEY = fake_key("private", "Q2x8LmTz0R7vKp4YwN9bHs3cJf6D=")
PUBLIC_KEY = "public_Hn5Vb2Kq8ZsW1xLr7TgY4mPc0Ej9="
WRONG_KEY = fake_key("private", "Wr0ngK3yZa8bX2cV7nM4qL1pT6s=")


def diagnose(*args: str, stdout: object = None) -> tuple[str, int, str]:
    """Run the command; ``(stdout text, exit status, CommandError text)``."""
    out = io.StringIO() if stdout is None else stdout
    try:
        call_command("imagekit_diagnose", *args, stdout=out, stderr=io.StringIO())
    except CommandError as error:
        status, message = error.returncode, str(error)
    else:
        status, message = 0, ""
    text = out.getvalue() if isinstance(out, io.StringIO) else ""
    return text, status, message


def statuses(*args: str) -> dict[str, str]:
    text, _, _ = diagnose("--json", *args)
    return {step["key"]: step["status"] for step in json.loads(text)["steps"]}


def step(document: dict, key: str) -> dict:
    return next(s for s in document["steps"] if s["key"] == key)


def details(document: dict, key: str) -> dict[str, str]:
    return {d["label"]: d["value"] for d in step(document, key)["details"]}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for key in (PRIVATE_KEY, PUBLIC_KEY, WRONG_KEY):
            # The prefix may show; nothing after it may.
            assert key not in text
            assert key.split("_", 1)[1][:12] not in text


@pytest.fixture
def keyed_server():
    """A stand-in server whose private key looks like a real one."""
    with FakeImageKitServer(private_key=PRIVATE_KEY) as server:
        yield server


@pytest.fixture
def configured(settings, keyed_server):
    """Django's default storage on ``keyed_server``, keys in settings as a project has them."""
    settings.IMAGEKIT_PRIVATE_KEY = PRIVATE_KEY
    settings.IMAGEKIT_PUBLIC_KEY = PUBLIC_KEY
    settings.IMAGEKIT_URL_ENDPOINT = keyed_server.url_endpoint
    settings.IMAGEKIT_BASE_URL = keyed_server.base_url
    settings.IMAGEKIT_MAX_RETRIES = 0
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": BACKEND}}
    yield keyed_server
    close_storages()


def close_storages() -> None:
    from django.core.files.storage import storages

    from django_imagekit_storage.storage import ImageKitStorage

    for storage in list(storages._storages.values()):
        if isinstance(storage, ImageKitStorage):
            storage.close()


# --- everything passing ---------------------------------------------------------------------


def test_every_step_passes_and_cleans_up(configured):
    text, status, _ = diagnose()
    assert status == 0
    for _, title in STEPS:
        assert title in text
    assert text.count("\u2713 passed") == len(STEPS)
    assert "Result: 5 passed, 0 failed, 0 skipped" in text
    # The round trip left nothing behind, and did what it says.
    assert dict(configured.files) == {}
    assert configured.count("upload") == 1
    assert configured.count("delete") >= 1
    assert configured.count("delivery") >= 2  # open() and the HTTP GET
    assert_no_secret(text)


def test_round_trip_details(configured):
    document = json.loads(diagnose("--json")[0])
    round_trip = details(document, "round_trip")
    assert round_trip["file"].startswith(f"{DIAGNOSTICS_FOLDER}/roundtrip-")
    for operation in ("save", "url", "exists", "size", "open", "HTTP GET", "delete"):
        assert operation in round_trip, operation
    assert round_trip["exists after delete"].startswith("False")
    assert "identical" in round_trip["open"]
    assert round_trip["HTTP GET"].startswith("HTTP 200")


def test_backend_step_shows_the_storage_settings_as_they_are(configured, settings):
    settings.IMAGEKIT_PRIVATE_FILES = True
    backend = details(json.loads(diagnose("--json")[0]), "backend")
    assert backend["private_files"] == "True"
    assert backend["signed_urls"] == "True"  # not "not a string but bool"
    assert backend["url_endpoint"] == configured.url_endpoint


def test_configuration_shows_keys_as_prefix_and_source_only(configured):
    document = json.loads(diagnose("--json")[0])
    config = details(document, "configuration")
    assert config["private_key"] == "set (private_...), from the IMAGEKIT_PRIVATE_KEY setting"
    assert config["public_key"] == "set (public_...), from the IMAGEKIT_PUBLIC_KEY setting"
    assert config["url_endpoint"].startswith(configured.url_endpoint)
    assert config["STORAGES['default']['BACKEND']"] == BACKEND
    assert config["DEFAULT_FILE_STORAGE"].startswith("not set")
    assert config["Django"] == django.get_version()


def test_keys_from_the_environment_are_described_not_shown(settings, keyed_server, monkeypatch):
    monkeypatch.setenv("IMAGEKIT_PRIVATE_KEY", PRIVATE_KEY)
    monkeypatch.setenv("IMAGEKIT_URL_ENDPOINT", keyed_server.url_endpoint)
    monkeypatch.setenv("IMAGEKIT_BASE_URL", keyed_server.base_url)
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": BACKEND}}
    try:
        text, status, _ = diagnose()
    finally:
        close_storages()
    assert status == 0, text
    assert "set (private_...), from the IMAGEKIT_PRIVATE_KEY environment variable" in text
    assert_no_secret(text)


def test_skip_upload_skips_only_the_round_trip(configured):
    text, status, _ = diagnose("--skip-upload")
    assert status == 0
    assert "Result: 4 passed, 0 failed, 1 skipped" in text
    assert configured.count("upload") == 0


# --- failures -------------------------------------------------------------------------------


def test_bad_key_fails_the_round_trip_without_showing_it(configured, settings):
    settings.IMAGEKIT_PRIVATE_KEY = WRONG_KEY
    text, status, message = diagnose()
    json_text, _, _ = diagnose("--json")
    assert status == 1
    document = json.loads(json_text)
    assert step(document, "round_trip")["status"] == "failed"
    assert "ImageKitAuthenticationError" in step(document, "round_trip")["reason"]
    assert step(document, "configuration")["status"] == "passed"
    assert "Storage round trip" in message
    assert_no_secret(text, json_text, message)
    assert dict(configured.files) == {}


def test_unreachable_server_fails_the_round_trip(configured, settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings.IMAGEKIT_BASE_URL = closed
    settings.IMAGEKIT_TIMEOUT = 2
    settings.IMAGEKIT_UPLOAD_TIMEOUT = 2
    document = json.loads(diagnose("--json")[0])
    round_trip = step(document, "round_trip")
    assert round_trip["status"] == "failed"
    assert "ImageKitConnectionError" in round_trip["reason"]
    assert details(document, "round_trip")["save"].startswith("failed after")
    # The later steps that make sense still ran.
    assert step(document, "checks")["status"] == "passed"
    assert step(document, "images")["status"] == "passed"


def test_failing_delivery_fails_the_round_trip_and_still_cleans_up(configured):
    configured.fail("delivery", status=500, times=10)
    document = json.loads(diagnose("--json")[0])
    assert step(document, "round_trip")["status"] == "failed"
    assert details(document, "round_trip")["delete"].startswith("done")
    assert dict(configured.files) == {}


class TaggingStorage(ImageKitStorage):
    """A project's subclass whose upload hook is wrong (a list, not a dict)."""

    def get_upload_options(self, name, content):
        return ["tags", "x"]


def test_a_broken_upload_hook_fails_the_round_trip_not_the_command(configured, settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": f"{__name__}.TaggingStorage"}}
    text, status, _ = diagnose()
    assert status == 1
    document = json.loads(diagnose("--json")[0])
    round_trip = step(document, "round_trip")
    assert round_trip["status"] == "failed"
    assert "TypeError: get_upload_options() must return a dict" in round_trip["reason"]
    assert step(document, "backend")["status"] == "passed"  # a subclass is fine
    assert "Result: 4 passed, 1 failed" in text


class WrongSizeStorage(ImageKitStorage):
    def size(self, name):
        return super().size(name) + 1


class CorruptingStorage(ImageKitStorage):
    def _open(self, name, mode="rb"):
        from django.core.files.base import ContentFile

        return ContentFile(super()._open(name, mode).read()[:-1] + b"?", name=name)


class UndeadStorage(ImageKitStorage):
    """Says a deleted file still exists (a stale cache would)."""

    def exists(self, name):
        return True


@pytest.mark.parametrize(
    ("backend", "why"),
    [
        (WrongSizeStorage, "bytes were saved"),
        (CorruptingStorage, "bytes that differ from the"),
        (UndeadStorage, "is still True after delete()"),
    ],
)
def test_the_round_trip_checks_what_it_reads_back(configured, settings, backend, why):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.{backend.__name__}"},
    }
    document = json.loads(diagnose("--json")[0])
    round_trip = step(document, "round_trip")
    assert round_trip["status"] == "failed"
    assert why in round_trip["reason"]
    assert dict(configured.files) == {}  # cleaned up all the same


def test_a_failed_delete_names_the_file_to_delete_by_hand(configured):
    configured.fail("delete", status=500, message="Deletes are down.")
    document = json.loads(diagnose("--json")[0])
    round_trip = step(document, "round_trip")
    assert round_trip["status"] == "failed"
    (left,) = [path.lstrip("/") for path in configured.files]
    assert "Deletes are down." in round_trip["reason"]
    assert round_trip["reason"].endswith(f"Delete {left!r} by hand.")


def test_wrong_backend_with_imagekit_settings_fails(settings):
    settings.IMAGEKIT_PRIVATE_KEY = PRIVATE_KEY
    settings.IMAGEKIT_URL_ENDPOINT = "https://ik.imagekit.io/demo"
    text, status, _ = diagnose()
    document = json.loads(diagnose("--json")[0])
    assert status == 1
    backend = step(document, "backend")
    assert backend["status"] == "failed"
    assert "ImageKit settings are present" in backend["reason"]
    assert "InMemoryStorage" in backend["reason"]
    assert step(document, "round_trip")["status"] == "skipped"
    assert_no_secret(text, json.dumps(document))


def test_no_imagekit_at_all_fails_the_backend_step():
    document = json.loads(diagnose("--json")[0])
    assert step(document, "backend")["status"] == "failed"
    assert "no ImageKit setting is present" in step(document, "backend")["reason"]


def test_missing_key_fails_configuration_backend_and_checks(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": BACKEND, "OPTIONS": {"url_endpoint": "https://ik.imagekit.io/x"}},
    }
    got = statuses()
    config = details(json.loads(diagnose("--json")[0]), "configuration")
    assert config["private_key"] == "missing"
    assert config["url_endpoint"].startswith("https://ik.imagekit.io/x, from STORAGES")
    assert got["configuration"] == "failed"
    assert got["backend"] == "failed"
    assert got["round_trip"] == "skipped"
    assert got["checks"] == "failed"


def run_from_argv(*args: str) -> tuple[int, str, str]:
    """The command as manage.py runs it (system checks first, SystemExit on error)."""
    from django_imagekit_storage.management.commands.imagekit_diagnose import Command

    out, err = io.StringIO(), io.StringIO()
    try:
        Command(stdout=out, stderr=err).run_from_argv(["manage.py", "imagekit_diagnose", *args])
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_a_check_error_does_not_stop_the_command(settings):
    # manage.py runs the system checks before most commands; a check error (here a
    # missing private key) must be reported by the checks step, not abort the command.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": BACKEND, "OPTIONS": {"url_endpoint": "https://ik.imagekit.io/x"}},
    }
    status, out, err = run_from_argv("--skip-upload")
    assert status == 1
    assert "System checks" in out
    assert "SystemCheckError" not in err
    assert err.startswith("CommandError: ")


def test_exit_status_zero_as_manage_py_runs_it(configured):
    status, out, err = run_from_argv("--skip-upload")
    assert (status, err) == (0, "")
    assert "Result: 4 passed, 0 failed, 1 skipped" in out


def test_unknown_alias(configured):
    document = json.loads(diagnose("--json", "--storage", "nope")[0])
    assert document["alias"] == "nope"
    assert step(document, "configuration")["status"] == "failed"
    assert "STORAGES['nope'] is not defined" in step(document, "configuration")["reason"]
    assert step(document, "backend")["status"] == "failed"


def test_storage_option_picks_a_named_alias(settings, keyed_server):
    settings.STORAGES = {
        **settings.STORAGES,
        "photos": {
            "BACKEND": BACKEND,
            "OPTIONS": {
                "private_key": PRIVATE_KEY,
                "url_endpoint": keyed_server.url_endpoint,
                "base_url": keyed_server.base_url,
                "location": "diag",
            },
        },
    }
    try:
        text, status, _ = diagnose("--storage", "photos")
    finally:
        close_storages()
    assert status == 0, text
    assert "from STORAGES['photos']['OPTIONS']" in text
    assert keyed_server.count("upload") == 1
    assert_no_secret(text)


@pytest.mark.skipif(django.VERSION < (5, 1), reason="Django < 5.1 honours DEFAULT_FILE_STORAGE")
def test_default_file_storage_ignored_fails_configuration(settings):
    settings.DEFAULT_FILE_STORAGE = BACKEND
    document = json.loads(diagnose("--json", "--skip-upload")[0])
    config = step(document, "configuration")
    assert config["status"] == "failed"
    assert "ignores it" in config["reason"]
    assert details(document, "configuration")["DEFAULT_FILE_STORAGE"] == BACKEND
    assert "ignored" in details(document, "configuration")["DEFAULT_FILE_STORAGE on this Django"]


@pytest.mark.skipif(django.VERSION >= (5, 1), reason="Django >= 5.1 ignores DEFAULT_FILE_STORAGE")
def test_default_file_storage_mirrored_from_storages_is_not_reported_as_set(configured):
    # Django 4.2/5.0 copy STORAGES['default'] into DEFAULT_FILE_STORAGE themselves.
    document = json.loads(diagnose("--json", "--skip-upload")[0])
    assert details(document, "configuration")["DEFAULT_FILE_STORAGE"].startswith(
        "not set by the project"
    )
    assert step(document, "configuration")["status"] == "passed"


@pytest.mark.skipif(django.VERSION >= (5, 1), reason="Django >= 5.1 ignores DEFAULT_FILE_STORAGE")
def test_default_file_storage_set_by_the_project_is_reported_as_deprecated(settings):
    with pytest.warns(Warning, match="DEFAULT_FILE_STORAGE"):  # Django deprecates it
        settings.DEFAULT_FILE_STORAGE = "django.core.files.storage.FileSystemStorage"
    document = json.loads(diagnose("--json", "--skip-upload")[0])
    config = details(document, "configuration")
    assert config["DEFAULT_FILE_STORAGE"] == "django.core.files.storage.FileSystemStorage"
    assert config["DEFAULT_FILE_STORAGE on this Django"].startswith("deprecated: ")
    assert "5.1 and later ignore it" in config["DEFAULT_FILE_STORAGE on this Django"]


def test_images_step_fails_without_a_webp_encoder(configured, monkeypatch):
    from PIL import Image

    Image.init()
    monkeypatch.delitem(Image.SAVE, "WEBP")
    document = json.loads(diagnose("--json")[0])
    images = step(document, "images")
    assert images["status"] == "failed"
    assert "WEBP" in images["reason"]
    # The round trip still ran, with a PNG of its own.
    assert step(document, "round_trip")["status"] == "passed"
    assert details(document, "round_trip")["file"].split(" ")[0].endswith(".png")


def test_checks_step_lists_only_this_librarys_messages(configured, settings):
    from django.core import checks

    @checks.register("diagnose-test")
    def other_app(app_configs=None, **kwargs):
        return [checks.Warning("not ours", id="otherapp.W001")]

    try:
        document = json.loads(diagnose("--json", "--skip-upload")[0])
    finally:
        checks.registry.registry.registered_checks.discard(other_app)
    assert step(document, "checks")["status"] == "passed"
    assert "otherapp.W001" not in json.dumps(document)


def test_checks_step_fails_on_a_library_warning(configured, settings):
    settings.IMAGEKIT_PUBLIC_KEY = fake_key("private", "Sw4pp3dK3yXy9zQ2wE5rT8uI1oP=")  # W003
    document = json.loads(diagnose("--json", "--skip-upload")[0])
    checks_step = step(document, "checks")
    assert checks_step["status"] == "failed"
    assert "django_imagekit_storage.W003" in checks_step["reason"]
    assert "Sw4pp3dK3y" not in json.dumps(document)


def test_silenced_checks_do_not_fail(configured, settings):
    settings.IMAGEKIT_PUBLIC_KEY = fake_key("private", "Sw4pp3dK3yXy9zQ2wE5rT8uI1oP=")
    settings.SILENCED_SYSTEM_CHECKS = ["django_imagekit_storage.W003"]
    document = json.loads(diagnose("--json", "--skip-upload")[0])
    assert step(document, "checks")["status"] == "passed"
    assert details(document, "checks")["silenced"].startswith("1")


def test_credentials_in_a_base_url_are_hidden(configured, settings):
    settings.IMAGEKIT_BASE_URL = configured.base_url.replace(
        "http://", "http://proxyuser:s3cr3tpass@"
    )
    text, _, _ = diagnose("--skip-upload")
    assert "s3cr3tpass" not in text
    assert "proxyuser" not in text
    assert "***@127.0.0.1" in text


# --- output forms ---------------------------------------------------------------------------


def test_json_is_one_document_with_the_documented_keys(configured):
    text, status, _ = diagnose("--json")
    assert status == 0
    document = json.loads(text)  # one document, nothing around it
    assert set(document) == {
        "schema_version",
        "ok",
        "alias",
        "django_version",
        "library_version",
        "summary",
        "steps",
    }
    assert document["schema_version"] == 1
    assert document["ok"] is True
    assert document["summary"] == {"passed": 5, "failed": 0, "skipped": 0}
    assert [s["key"] for s in document["steps"]] == [key for key, _ in STEPS]
    for entry in document["steps"]:
        assert set(entry) == {"key", "title", "status", "reason", "duration_ms", "details"}
        assert entry["status"] in {"passed", "failed", "skipped"}
        assert isinstance(entry["duration_ms"], float)
        assert all(set(d) == {"label", "value"} for d in entry["details"])
    assert text.isascii()


def test_json_failure_keeps_exit_status_one(settings):
    text, status, _ = diagnose("--json", "--skip-upload")
    assert status == 1
    assert json.loads(text)["ok"] is False


def test_unicode_markers_on_a_utf8_stream(configured):
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    diagnose("--skip-upload", stdout=stream)
    stream.flush()
    text = stream.buffer.getvalue().decode("utf-8")
    assert "\u2713 passed" in text


@pytest.mark.parametrize("encoding", ["ascii", "cp1252", "cp437"])
def test_ascii_markers_when_the_stream_cannot_encode_unicode(configured, encoding):
    stream = io.TextIOWrapper(io.BytesIO(), encoding=encoding)
    _, status, _ = diagnose("--skip-upload", stdout=stream)
    stream.flush()
    raw = stream.buffer.getvalue()
    assert status == 0
    assert raw.isascii()
    assert b"[ok]" in raw
    assert b"[skip]" in raw


def test_no_colour_when_not_a_terminal(configured):
    text, _, _ = diagnose("--skip-upload")
    assert "\x1b[" not in text


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_on_a_terminal_unless_no_color(configured, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = FakeTerminal()
    diagnose("--skip-upload", stdout=terminal)
    assert "\x1b[32m" in terminal.getvalue()

    monkeypatch.setenv("NO_COLOR", "1")
    terminal = FakeTerminal()
    diagnose("--skip-upload", stdout=terminal)
    assert "\x1b[" not in terminal.getvalue()

    monkeypatch.delenv("NO_COLOR")
    terminal = FakeTerminal()
    call_command("imagekit_diagnose", "--skip-upload", "--no-color", stdout=terminal)
    assert "\x1b[" not in terminal.getvalue()


def test_characters_the_stream_cannot_encode_never_raise(configured):
    stream = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    _, status, _ = diagnose("--skip-upload", "--storage", "fotos-\u00fc\u2603", stdout=stream)
    stream.flush()
    assert status == 1
    raw = stream.buffer.getvalue()
    assert b"[FAIL]" in raw  # the markers are ASCII
    assert b"fotos-\xfc\\u2603" in raw  # what cp1252 has stays; the rest is an escape
    assert encodable("a\u2713\u00e9", stream) == "a\\u2713\u00e9"


def test_stream_helpers():
    assert stream_supports(io.StringIO(), "\u2713")
    assert not stream_supports(io.TextIOWrapper(io.BytesIO(), encoding="ascii"), "\u2713")
    assert not stream_wants_colour(io.StringIO(), {})
    assert stream_wants_colour(FakeTerminal(), {})
    assert not stream_wants_colour(FakeTerminal(), {"NO_COLOR": "1"})


def test_render_text_is_separate_from_running(configured):
    report = run_diagnose(skip_upload=True)
    assert report.ok
    ascii_text = render_text(report, unicode=False)
    assert ascii_text.isascii()
    assert "[ok]" in ascii_text
    assert "\x1b[" in render_text(report, colour=True)


def test_the_library_adds_no_logging_handler(configured):
    import logging

    diagnose()  # imports and exercises the storage, client and optimiser
    names = [
        name
        for name in logging.root.manager.loggerDict
        if name.startswith("django_imagekit_storage")
    ]
    assert {"django_imagekit_storage.storage", "django_imagekit_storage.images"} <= set(names)
    for name in names:
        logger = logging.getLogger(name)
        assert logger.handlers == [], name
        assert logger.propagate, name


def test_credentials_in_the_url_endpoint_are_hidden_in_the_round_trip(configured, settings):
    settings.IMAGEKIT_URL_ENDPOINT = configured.url_endpoint.replace(
        "http://", "http://deliveryuser:d3l1v3rypass@"
    )
    text, _, message = diagnose()
    json_text, _, _ = diagnose("--json")
    for output in (text, json_text, message):
        assert "d3l1v3rypass" not in output
        assert "deliveryuser" not in output
    assert dict(configured.files) == {}
