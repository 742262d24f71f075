"""No secret leaks, through any channel (issue 8): one sentinel private key drives every
channel a key could escape through, and neither the key, nor any 12-character slice of it,
nor its HTTP Basic form, may appear in what each channel lets out.

Channels: log records at DEBUG from every logger (ours, the SDK's, httpx's, the stand-in
server's) during save/url/open/delete with faults injected; the message, ``args``, ``repr``
and formatted traceback (causes included) of every error kind; check messages and
``manage.py check`` output; ``imagekit_diagnose`` text and ``--json`` output; ``repr`` of the
storage, its settings and its client; ``deconstruct()``; a migration written for a model
field on such a storage; the stand-in server's request log.
"""

from __future__ import annotations

import base64
import io
import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.db import migrations, models
from django.db.migrations.writer import MigrationWriter

from django_imagekit_storage.client import ImageKitClient
from django_imagekit_storage.conf import resolve_options
from django_imagekit_storage.exceptions import (
    ImageKitAuthenticationError,
    ImageKitConnectionError,
    ImageKitFileExistsError,
    ImageKitResponseError,
    ImageKitStorageError,
    ImageKitTimeoutError,
)
from django_imagekit_storage.storage import ImageKitStorage
from django_imagekit_storage.testing import FakeImageKitServer
from tests.fake_keys import fake_key

# Shaped like a real ImageKit key.
SENTINEL = fake_key("private", "Sn7Lq2Xw9Vt4Kb8Rz1Mc6Hd3Jf0Y=")
BACKEND = "django_imagekit_storage.storage.ImageKitStorage"


def forms_of_the_key() -> list[str]:
    """The key, every 12-character slice of it, and its HTTP Basic credentials."""
    slices = [SENTINEL[start : start + 12] for start in range(len(SENTINEL) - 11)]
    basic = base64.b64encode(f"{SENTINEL}:".encode()).decode()
    return [SENTINEL, *slices, basic, basic[:16]]


def assert_no_secret(texts: dict[str, str]) -> None:
    assert texts
    for channel, text in texts.items():
        for form in forms_of_the_key():
            assert form not in text, f"{form!r} leaked through {channel}"


def error_texts(label: str, error: BaseException) -> dict[str, str]:
    """What an exception lets out: message, args, repr, and a traceback with its causes
    (what Django's error page and log handlers print)."""
    return {
        f"{label}: str": str(error),
        f"{label}: args": repr(error.args),
        f"{label}: repr": repr(error),
        f"{label}: traceback": "".join(
            traceback.format_exception(type(error), error, error.__traceback__)
        ),
        f"{label}: attributes": repr(vars(error)),
    }


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[FakeImageKitServer]:
    with FakeImageKitServer(private_key=SENTINEL) as server:
        yield server


@pytest.fixture
def server(keyed_server: FakeImageKitServer) -> Iterator[FakeImageKitServer]:
    keyed_server.reset()
    yield keyed_server
    keyed_server.reset()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageKitClient, "backoff_initial", 0.001)


@pytest.fixture
def make_storage(server: FakeImageKitServer) -> Iterator[Callable[..., ImageKitStorage]]:
    made: list[ImageKitStorage] = []

    def make(**options: Any) -> ImageKitStorage:
        values: dict[str, Any] = {
            "private_key": SENTINEL,
            "public_key": "public_Pq3Wr5Ty7Ui9Op1As2Df4Gh6Jk=",
            "url_endpoint": server.url_endpoint,
            "base_url": server.base_url,
            "location": "media",
        }
        values.update(options)
        storage = ImageKitStorage(**values)
        made.append(storage)
        return storage

    yield make
    for storage in made:
        storage.close()


# --- logs ---------------------------------------------------------------------------------


def test_debug_logs_of_every_operation_with_faults_carry_no_key(
    make_storage: Callable[..., ImageKitStorage],
    server: FakeImageKitServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root: every logger, ours and the libraries'
    for private in (False, True):  # public URLs, and signed ones (the key signs them)
        storage = make_storage(private_files=private)
        hasty = make_storage(private_files=private, timeout=0.1)
        server.fail("upload", 503, message=f"Echoing {SENTINEL}", help=f"key {SENTINEL}")
        server.drop("upload", after_processing=True)
        name = storage.save("logged.txt", ContentFile(b"logged bytes"))
        url = storage.url(name)
        server.fail("list", 429, headers={"Retry-After": "0"})
        server.drop("delivery")
        with storage.open(name) as handle:
            assert handle.read() == b"logged bytes"
        server.fail("delete", 500)
        storage.delete(name)
        # And the failures, logged at ERROR.
        server.fail("upload", 500, times=3, message=f"bad key {SENTINEL}")
        with pytest.raises(ImageKitStorageError):
            storage.save("fails.txt", ContentFile(b"x"))
        server.stall("list", 5)
        with pytest.raises(ImageKitTimeoutError):
            hasty.exists("stalled.txt")
        server.reset()
        assert_no_secret({"url": url})
    ours = {r.name for r in caplog.records if r.name.startswith("django_imagekit_storage")}
    assert {"django_imagekit_storage.client", "django_imagekit_storage.storage"} <= ours
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    texts = {
        f"log record {index} ({record.name})": f"{record.getMessage()} {record.args!r}"
        for index, record in enumerate(caplog.records)
    }
    texts["formatted log"] = caplog.text
    assert_no_secret(texts)


# --- exceptions -----------------------------------------------------------------------------


def test_no_error_kind_carries_the_key(
    make_storage: Callable[..., ImageKitStorage],
    server: FakeImageKitServer,
    imagekit_server: FakeImageKitServer,
) -> None:
    caught: dict[str, BaseException] = {}

    def catch(label: str, kind: type[BaseException], call: Callable[[], object]) -> None:
        with pytest.raises(kind) as info:
            call()
        caught[label] = info.value

    storage = make_storage()
    hasty = make_storage(timeout=0.1)
    # A server that echoes the key back in its message and help.
    server.fail("upload", 500, times=3, message=f"bad key {SENTINEL}", help=f"was {SENTINEL}")
    catch(
        "ImageKitStorageError",
        ImageKitStorageError,
        lambda: storage.save("a.txt", ContentFile(b"x")),
    )
    server.drop("list", times=3)
    catch("ImageKitConnectionError", ImageKitConnectionError, lambda: storage.exists("a.txt"))
    server.stall("list", 5)
    catch("ImageKitTimeoutError", ImageKitTimeoutError, lambda: hasty.size("a.txt"))
    server.reset()
    server.add_file("/media/taken.txt", b"theirs")
    catch(
        "ImageKitFileExistsError",
        ImageKitFileExistsError,
        lambda: storage.save_exact("taken.txt", ContentFile(b"ours")),
    )
    catch("FileNotFoundError", FileNotFoundError, lambda: storage.open("missing.txt"))
    # The sentinel key on a server that does not know it.
    stranger = ImageKitStorage(
        private_key=SENTINEL,
        url_endpoint=imagekit_server.url_endpoint,
        base_url=imagekit_server.base_url,
        max_retries=0,
    )
    try:
        catch(
            "ImageKitAuthenticationError",
            ImageKitAuthenticationError,
            lambda: stranger.save("a.txt", ContentFile(b"x")),
        )
    finally:
        stranger.close()
    # An answer that is not JSON, and echoes the key.
    settings = resolve_options(
        {"private_key": SENTINEL, "url_endpoint": "https://ik.example/x", "max_retries": 0},
        environ={},
    )
    garbled = ImageKitClient(
        settings,
        _transport=httpx.MockTransport(lambda request: httpx.Response(200, text=f"<{SENTINEL}>")),
    )
    try:
        catch("ImageKitResponseError", ImageKitResponseError, lambda: garbled.find("a.txt"))
    finally:
        garbled.close()
    # Configuration errors that involve the key.
    for label, options in {
        "key not a string": {"private_key": [SENTINEL], "url_endpoint": "https://ik.example/x"},
        "key as the endpoint": {"private_key": SENTINEL, "url_endpoint": SENTINEL},
        "bad timeout": {
            "private_key": SENTINEL,
            "url_endpoint": "https://x.example",
            "timeout": "abc",
        },
        "unknown option": {
            "private_key": SENTINEL,
            "url_endpoint": "https://x.example",
            "privat_key": SENTINEL,
        },
    }.items():
        catch(
            f"ImproperlyConfigured ({label})",
            ImproperlyConfigured,
            lambda o=options: ImageKitStorage(**o),
        )
    assert {type(error) for error in caught.values()} >= {
        ImageKitStorageError,
        ImageKitConnectionError,
        ImageKitTimeoutError,
        ImageKitFileExistsError,
        ImageKitAuthenticationError,
        ImageKitResponseError,
        FileNotFoundError,
        ImproperlyConfigured,
    }
    texts: dict[str, str] = {}
    for label, error in caught.items():
        texts.update(error_texts(label, error))
    assert_no_secret(texts)


# --- checks, diagnose -----------------------------------------------------------------------


@pytest.fixture
def configured(settings: Any, server: FakeImageKitServer) -> Iterator[FakeImageKitServer]:
    """The default storage on the sentinel-keyed server, the key in settings."""
    settings.IMAGEKIT_PRIVATE_KEY = SENTINEL
    settings.IMAGEKIT_URL_ENDPOINT = server.url_endpoint
    settings.IMAGEKIT_BASE_URL = server.base_url
    settings.IMAGEKIT_MAX_RETRIES = 0
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": BACKEND}}
    yield server
    from django.core.files.storage import storages

    for storage in list(storages._storages.values()):
        if isinstance(storage, ImageKitStorage):
            storage.close()


def test_check_messages_carry_no_key(settings: Any, configured: FakeImageKitServer) -> None:
    # Every kind of mistake a key can be part of.
    settings.IMAGEKIT_PUBLIC_KEY = SENTINEL  # the private key in the public key's place
    settings.STORAGES = {
        **settings.STORAGES,
        "typo": {"BACKEND": BACKEND, "OPTIONS": {"privat_key": SENTINEL}},
        "wrong_type": {"BACKEND": BACKEND, "OPTIONS": {"private_key": [SENTINEL]}},
        "key_as_url": {"BACKEND": BACKEND, "OPTIONS": {"url_endpoint": SENTINEL}},
    }
    messages = [m for m in run_checks() if (m.id or "").startswith("django_imagekit_storage.")]
    assert len(messages) >= 4
    texts = {f"check {m.id}": f"{m.msg} {m.hint} {m.obj!r} {m}" for m in messages}
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("check", stdout=out, stderr=err)
    texts.update({"check output": out.getvalue() + err.getvalue(), "check error": str(info.value)})
    assert_no_secret(texts)


def test_diagnose_text_and_json_carry_no_key(configured: FakeImageKitServer) -> None:
    texts: dict[str, str] = {}
    for arguments in ((), ("--json",)):
        for fault in (None, "upload"):
            if fault is not None:
                configured.fail(fault, 500, message=f"bad key {SENTINEL}", help=SENTINEL)
            out = io.StringIO()
            try:
                call_command("imagekit_diagnose", *arguments, stdout=out, stderr=io.StringIO())
            except CommandError as error:
                texts[f"diagnose {arguments} {fault}: error"] = str(error)
            texts[f"diagnose {arguments} {fault}"] = out.getvalue()
            configured.reset()
    assert '"steps"' in texts["diagnose ('--json',) None"]
    assert_no_secret(texts)


# --- repr, deconstruct, migrations, the stand-in's request log ------------------------------


def test_repr_deconstruct_and_migrations_carry_no_key(
    make_storage: Callable[..., ImageKitStorage], server: FakeImageKitServer
) -> None:
    storage = make_storage(private_files=True)
    storage.delete(storage.save("a.txt", ContentFile(b"x")))  # a client and a cache exist
    field = models.FileField(storage=storage, upload_to="docs")
    migration = migrations.Migration("0002_secretive", "storage_app")
    migration.operations = [
        migrations.CreateModel(
            "Secretive", [("id", models.BigAutoField(primary_key=True)), ("file", field)]
        )
    ]
    written = MigrationWriter(migration).as_string()
    assert "ImageKitStorage" in written
    assert server.url_endpoint in written
    assert_no_secret(
        {
            "repr(storage)": repr(storage),
            "repr(settings)": repr(storage.settings),
            "repr(client)": repr(storage._client),
            "deconstruct()": repr(storage.deconstruct()),
            "field.deconstruct()": repr(field.deconstruct()),
            "MigrationWriter.serialize": repr(MigrationWriter.serialize(field)),
            "migration file": written,
        }
    )


def test_the_stand_in_request_log_carries_no_key(
    make_storage: Callable[..., ImageKitStorage], server: FakeImageKitServer
) -> None:
    storage = make_storage(private_files=True)
    name = storage.save("logged.txt", ContentFile(b"x"))
    storage.get_created_time(name)  # a search: an upload's answer has no times
    with storage.open(name) as handle:
        handle.read()
    storage.delete(name)
    requests = server.requests
    assert {request.route for request in requests} >= {"upload", "list", "delivery", "delete"}
    assert_no_secret(
        {"request log": repr(requests), "repr(server)": repr(server), "str(server)": str(server)}
    )
