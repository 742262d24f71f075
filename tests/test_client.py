"""client.py through the real imagekitio SDK over real HTTP to the stand-in server."""

from __future__ import annotations

import base64
import gc
import io
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from django.core.files.base import ContentFile, File

from django_imagekit_storage.client import ImageKitClient, RemoteFile
from django_imagekit_storage.conf import StorageSettings, resolve_options
from django_imagekit_storage.exceptions import (
    ImageKitAuthenticationError,
    ImageKitConnectionError,
    ImageKitFileExistsError,
    ImageKitResponseError,
    ImageKitStorageError,
    ImageKitTimeoutError,
)
from django_imagekit_storage.testing import FakeImageKitServer
from tests.helpers import ForwardOnlyStream

KEY = "private_sentinel_Zq8wX"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeImageKitServer]:
    with FakeImageKitServer(private_key=KEY) as running:
        yield running


@pytest.fixture
def imagekit(server: FakeImageKitServer) -> Iterator[FakeImageKitServer]:
    server.reset()
    yield server
    server.reset()


def make_settings(server: FakeImageKitServer, **options: Any) -> StorageSettings:
    values: dict[str, Any] = {
        "private_key": server.private_key,
        "url_endpoint": server.url_endpoint,
        "base_url": server.base_url,
        "timeout": 2,
        "upload_timeout": 2,
    }
    values.update(options)
    return resolve_options(values, environ={})


@pytest.fixture
def client(
    imagekit: FakeImageKitServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ImageKitClient]:
    # Fast retries keep the suite quick; the policy is the same.
    monkeypatch.setattr(ImageKitClient, "backoff_initial", 0.01)
    made = ImageKitClient(make_settings(imagekit))
    yield made
    made.close()


def upload(client: ImageKitClient, path: str, data: bytes = b"hello", **kwargs: Any) -> RemoteFile:
    kwargs.setdefault("overwrite", False)
    kwargs.setdefault("is_private", False)
    return client.upload(ContentFile(data, name="ignored.bin"), path=path, **kwargs)


# --- happy paths and request counts ---------------------------------------------------


def test_no_network_until_first_call(imagekit: FakeImageKitServer) -> None:
    made = ImageKitClient(make_settings(imagekit))
    assert made._sdk is None
    made.close()
    assert imagekit.count() == 0


def test_upload_stores_at_exact_path_in_one_request(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    remote = upload(client, "media/photos/cat.txt", b"meow")
    assert remote.path == "media/photos/cat.txt"
    assert remote.size == 4
    assert remote.file_id == imagekit.files["/media/photos/cat.txt"].file_id
    assert remote.is_private is False
    assert remote.url == f"{imagekit.url_endpoint}/media/photos/cat.txt"
    assert imagekit.files["/media/photos/cat.txt"].data == b"meow"
    assert imagekit.count() == imagekit.count("upload") == 1
    form = imagekit.requests[0].form
    assert form["useUniqueFileName"] == "false"
    assert form["overwriteFile"] == "false"
    assert form["folder"] == "/media/photos/"
    assert form["fileName"] == "cat.txt"
    # Nothing the bare SDK upload would not send: each extra part costs socket writes.
    assert set(form) == {"fileName", "folder", "useUniqueFileName", "overwriteFile"}


def test_upload_asks_for_no_response_fields_and_sends_privacy_only_when_private(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    public = upload(client, "p/public.txt")
    private = upload(client, "p/private.txt", is_private=True)
    chosen = upload(client, "p/chosen.txt", extra={"is_private_file": True})
    # Replacing a file says its privacy, so a private one never stays private by omission.
    replaced = upload(client, "p/private.txt", b"now public", overwrite=True)
    forms = [request.form for request in imagekit.requests]
    assert all("responseFields" not in form for form in forms)
    assert "isPrivateFile" not in forms[0]
    assert forms[1]["isPrivateFile"] == forms[2]["isPrivateFile"] == "true"
    assert forms[3]["isPrivateFile"] == "false"
    assert replaced.is_private is False
    # The answer does not repeat the privacy: what was sent is what is reported.
    assert (public.is_private, private.is_private, chosen.is_private) == (False, True, True)
    assert [imagekit.files[f"/p/{n}.txt"].is_private for n in ("public", "private", "chosen")] == [
        False,
        False,
        True,
    ]


def test_upload_at_root_private_with_tags_and_metadata(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    remote = upload(
        client,
        "top.txt",
        is_private=True,
        tags=["a", "b"],
        custom_metadata={"k": 1},
        extra={"description": "hi"},
    )
    stored = imagekit.files["/top.txt"]
    assert remote.path == "top.txt"
    assert remote.is_private is stored.is_private is True
    assert stored.tags == ("a", "b")
    assert dict(stored.custom_metadata) == {"k": 1}
    assert imagekit.requests[0].form["description"] == "hi"


def test_upload_streams_every_django_file_kind(
    client: ImageKitClient, imagekit: FakeImageKitServer, tmp_path: Any
) -> None:
    disk = tmp_path / "f.bin"
    disk.write_bytes(b"on disk")
    with disk.open("rb") as handle:
        handle.read(3)  # a half-read file is still uploaded whole
        upload_file = File(handle, name="f.bin")
        client.upload(upload_file, path="a/disk.bin", overwrite=False, is_private=False)
        assert not handle.closed  # the caller's file stays open
    client.upload(ContentFile("héllo text"), path="a/text.txt", overwrite=False, is_private=False)
    client.upload(File(io.BytesIO(b"bytesio")), path="a/b.bin", overwrite=False, is_private=False)
    assert imagekit.files["/a/disk.bin"].data == b"on disk"
    assert imagekit.files["/a/text.txt"].data == "héllo text".encode()
    assert imagekit.files["/a/b.bin"].data == b"bytesio"


def test_upload_of_a_closed_file_is_refused_before_any_request(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    content = File(io.BytesIO(b"x"), name="x.bin")
    content.close()
    with pytest.raises(ValueError, match="closed"):
        client.upload(content, path="a/x.bin", overwrite=False, is_private=False)
    assert imagekit.count() == 0


def test_upload_existing_path_without_overwrite_is_file_exists(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.add_file("media/taken.txt", b"theirs")
    with pytest.raises(ImageKitFileExistsError) as caught:
        upload(client, "media/taken.txt", b"ours!!")  # same size: still not ours
    error = caught.value
    assert error.status_code == 400
    assert error.operation == "upload"
    assert error.name == "media/taken.txt"
    assert error.message is not None
    assert "already exists" in error.message
    assert imagekit.files["/media/taken.txt"].data == b"theirs"
    assert imagekit.count("upload") == 1
    assert imagekit.count("list") == 0  # a first attempt's refusal needs no lookup


def test_upload_overwrite_replaces(client: ImageKitClient, imagekit: FakeImageKitServer) -> None:
    old = imagekit.add_file("media/o.txt", b"old")
    remote = upload(client, "media/o.txt", b"newer", overwrite=True)
    assert remote.file_id == old.file_id
    assert imagekit.files["/media/o.txt"].data == b"newer"
    assert imagekit.requests[0].form["overwriteFile"] == "true"


def test_upload_rejects_options_the_sdk_does_not_know(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    with pytest.raises(TypeError, match="'colour' is not an argument") as caught:
        upload(client, "a/x.txt", extra={"colour": "red"})
    assert "description" in str(caught.value)  # lists the valid ones
    with pytest.raises(TypeError, match="'folder' is set by the storage"):
        upload(client, "a/x.txt", extra={"folder": "/elsewhere/"})
    assert imagekit.count() == 0


def test_find_is_one_search(client: ImageKitClient, imagekit: FakeImageKitServer) -> None:
    created = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    stored = imagekit.add_file("media/x/y.jpg", b"12345", created_at=created)
    imagekit.add_file("media/x/y.jpg.bak", b"1")
    imagekit.add_file("media/y.jpg", b"1")
    remote = client.find("media/x/y.jpg")
    assert remote == RemoteFile(
        path="media/x/y.jpg",
        file_id=stored.file_id,
        size=5,
        created_at=created,
        updated_at=created,
        is_private=False,
        url=f"{imagekit.url_endpoint}/media/x/y.jpg",
    )
    assert imagekit.count() == imagekit.count("list") == 1
    assert client.find("media/x/missing.jpg") is None
    assert client.find("missing-at-root.jpg") is None
    assert imagekit.count() == 3


def test_list_files_paginates(client: ImageKitClient, imagekit: FakeImageKitServer) -> None:
    for index in range(1003):
        imagekit.add_file(f"big/f{index:04d}.txt", b"x")
    imagekit.add_file("big/sub/deep.txt", b"x")
    imagekit.add_file("bigger/other.txt", b"x")
    names = [remote.path for remote in client.list_files("big", recursive=False)]
    assert len(names) == 1003 == len(set(names))
    assert imagekit.count("list") == 2
    recursive = {remote.path for remote in client.list_files("big/", recursive=True)}
    assert recursive == set(names) | {"big/sub/deep.txt"}
    everything = {remote.path for remote in client.list_files("", recursive=True)}
    assert everything == recursive | {"bigger/other.txt"}


def test_list_folders(client: ImageKitClient, imagekit: FakeImageKitServer) -> None:
    imagekit.add_file("a/b/c/file.txt", b"x")
    imagekit.add_file("a/d/file.txt", b"x")
    imagekit.add_file("a/top.txt", b"x")
    assert sorted(client.list_folders("a")) == ["b", "d"]
    assert sorted(client.list_folders("")) == ["a"]
    assert list(client.list_folders("a/b/c")) == []
    top = [remote.path for remote in client.list_files("a", recursive=False)]
    assert top == ["a/top.txt"]


def test_delete_and_delete_missing(client: ImageKitClient, imagekit: FakeImageKitServer) -> None:
    stored = imagekit.add_file("gone/soon.txt", b"x")
    assert client.delete(stored.file_id, path="gone/soon.txt") is True
    assert "/gone/soon.txt" not in imagekit.files
    # Already gone: not an error, but the caller can tell.
    assert client.delete(stored.file_id, path="gone/soon.txt") is False
    assert imagekit.count("delete") == 2


def test_exists_finds_files_and_folders_in_one_search(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.add_file("/a/b/c.txt", b"x")
    assert [client.exists(p) for p in ("a", "a/b", "a/b/c.txt", "a/c", "b", "a/b/c")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert imagekit.count() == imagekit.count("list") == 6
    assert client.find("a/b") is None  # find() is for files only


def test_download(client: ImageKitClient, imagekit: FakeImageKitServer) -> None:
    data = bytes(range(256)) * 1000
    imagekit.add_file("dl/data.bin", data)
    into = io.BytesIO(b"prefix")
    into.seek(0, io.SEEK_END)
    written = client.download(f"{imagekit.url_endpoint}/dl/data.bin", into, path="dl/data.bin")
    assert written == len(data)
    assert into.getvalue() == b"prefix" + data
    assert imagekit.count("delivery") == 1
    # Delivery never carries the API key.
    assert "Authorization" not in imagekit.requests[0].headers


def test_download_missing_is_file_not_found(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    with pytest.raises(FileNotFoundError, match=r"dl/none\.bin"):
        client.download(f"{imagekit.url_endpoint}/dl/none.bin", io.BytesIO(), path="dl/none.bin")
    assert imagekit.count("delivery") == 1


def test_wrong_key_is_authentication_error(imagekit: FakeImageKitServer) -> None:
    made = ImageKitClient(make_settings(imagekit, private_key="not_the_key"))
    with pytest.raises(ImageKitAuthenticationError) as caught:
        made.find("a/b.txt")
    made.close()
    assert caught.value.status_code in {401, 403}
    assert caught.value.message == "Your account cannot be authenticated."
    assert "not_the_key" not in str(caught.value)
    assert imagekit.count() == 1  # not retried


def test_close_then_reuse(client: ImageKitClient, imagekit: FakeImageKitServer) -> None:
    upload(client, "c/one.txt")
    client.close()
    client.close()
    assert client.find("c/one.txt") is not None


def test_a_client_dropped_without_close_closes_its_connections(
    imagekit: FakeImageKitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Django drops cached storages without closing them (a STORAGES override ending): their
    # kept-alive sockets must not be left to the garbage collector (a ResourceWarning each).
    unraisable: list[Any] = []
    original_hook = sys.unraisablehook
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    made = ImageKitClient(make_settings(imagekit))
    assert made.find("a/b.txt") is None
    del made
    gc.collect()
    monkeypatch.undo()
    ours = [u for u in unraisable if f", {imagekit.port})" in str(u.exc_value)]
    for other in unraisable:  # not this test's business: reported as pytest would
        if other not in ours:
            original_hook(other)
    assert [u.exc_value for u in ours] == []


def test_repr_has_no_key(client: ImageKitClient) -> None:
    assert KEY not in repr(client)
    upload(client, "r/x.txt")
    assert KEY not in repr(client)


def test_logs_debug_per_upload_and_delete(
    client: ImageKitClient, caplog: pytest.LogCaptureFixture
) -> None:
    # DEBUG, not INFO: the storage logs the one INFO line per upload and delete.
    caplog.set_level(logging.DEBUG, logger="django_imagekit_storage")
    remote = upload(client, "log/x.txt", b"abc")
    client.delete(remote.file_id, path=remote.path)
    debugs = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("upload of 'log/x.txt': 3 bytes in" in m for m in debugs)
    assert any("delete of 'log/x.txt': deleted in" in m for m in debugs)
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


# --- transient faults are survived ----------------------------------------------------

# Each operation: (route it uses, a call that must succeed).
OPERATIONS = ["upload", "find", "list", "delete", "download"]
ROUTE_OF = {
    "upload": "upload",
    "find": "list",
    "list": "list",
    "delete": "delete",
    "download": "delivery",
}
TRANSIENT = [
    pytest.param(lambda s, r: s.fail(r, 429, times=2, headers={"Retry-After": "0"}), id="429"),
    pytest.param(lambda s, r: s.fail(r, 500, times=2), id="500"),
    pytest.param(lambda s, r: s.fail(r, 502, times=2), id="502"),
    pytest.param(lambda s, r: s.fail(r, 503, times=2), id="503"),
    pytest.param(lambda s, r: s.fail(r, 504, times=2), id="504"),
    pytest.param(lambda s, r: s.drop(r, times=2), id="drop"),
    pytest.param(lambda s, r: s.drop(r, times=2, after_processing=True), id="drop-after"),
]


def run_operation(operation: str, client: ImageKitClient, server: FakeImageKitServer) -> object:
    if operation == "upload":
        return upload(client, "ops/new.txt", b"fresh").path
    if operation == "find":
        found = client.find("ops/existing.txt")
        return found.path if found else None
    if operation == "list":
        return sorted(remote.path for remote in client.list_files("ops", recursive=False))
    if operation == "delete":
        client.delete(server.files["/ops/existing.txt"].file_id, path="ops/existing.txt")
        return "/ops/existing.txt" in server.files
    into = io.BytesIO()
    client.download(f"{server.url_endpoint}/ops/existing.txt", into, path="ops/existing.txt")
    return into.getvalue()


EXPECTED = {
    "upload": "ops/new.txt",
    "find": "ops/existing.txt",
    "list": ["ops/existing.txt"],
    "delete": False,
    "download": b"there",
}


@pytest.mark.parametrize("inject", TRANSIENT)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_two_transient_faults_are_survived(
    operation: str, inject: Any, client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.add_file("ops/existing.txt", b"there")
    route = ROUTE_OF[operation]
    inject(imagekit, route)
    assert run_operation(operation, client, imagekit) == EXPECTED[operation]
    # Two failed attempts and one good one; an upload whose answer was lost may add a
    # search to recognise its own file.
    assert imagekit.count(route) == 3
    if operation == "upload":
        assert imagekit.files["/ops/new.txt"].data == b"fresh"
        assert sorted(imagekit.files) == ["/ops/existing.txt", "/ops/new.txt"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_lost_upload_answer_leaves_exactly_one_file(
    overwrite: bool, client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.drop("upload", after_processing=True)
    remote = upload(client, "lost/answer.txt", b"payload", overwrite=overwrite)
    assert remote.path == "lost/answer.txt"
    assert list(imagekit.files) == ["/lost/answer.txt"]
    assert remote.file_id == imagekit.files["/lost/answer.txt"].file_id
    assert remote.size == 7
    assert imagekit.count("upload") == 2
    # Without overwrite the retry hears "already exists" and checks the stored file.
    assert imagekit.count("list") == (0 if overwrite else 1)


@pytest.mark.parametrize(
    ("theirs", "age"),
    [
        pytest.param(b"theirs, longer", timedelta(0), id="other-size"),
        pytest.param(b"same", timedelta(hours=1), id="same-size-but-old"),
    ],
)
def test_retry_finding_someone_elses_file_is_file_exists(
    theirs: bytes, age: timedelta, client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    # The first attempt fails after possibly reaching ImageKit; while we wait, another
    # writer takes the path.
    imagekit.fail("upload", 503, headers={"Retry-After": "0.4"})
    created = datetime.now(timezone.utc) - age
    timer = threading.Timer(
        0.1, imagekit.add_file, args=("race/x.txt", theirs), kwargs={"created_at": created}
    )
    timer.start()
    try:
        with pytest.raises(ImageKitFileExistsError):
            upload(client, "race/x.txt", b"ours")
    finally:
        timer.join()
    assert imagekit.files["/race/x.txt"].data == theirs
    assert imagekit.count("upload") == 2
    assert imagekit.count("list") == 1


def test_retry_after_http_date_is_understood(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.fail("list", 429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert client.find("nothing/here.txt") is None
    assert imagekit.count("list") == 2


def test_retry_after_is_waited_for(client: ImageKitClient, imagekit: FakeImageKitServer) -> None:
    imagekit.fail("list", 429, headers={"Retry-After": "0.3"})
    started = time.monotonic()
    assert client.find("nothing/here.txt") is None
    assert time.monotonic() - started >= 0.3


def test_retry_after_beyond_the_deadline_fails_at_once(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.fail("list", 429, headers={"Retry-After": "30"}, message="Slow down.")
    started = time.monotonic()
    with pytest.raises(ImageKitStorageError) as caught:
        client.find("a/b.txt")
    assert time.monotonic() - started < 1
    assert caught.value.status_code == 429
    assert caught.value.message == "Slow down."
    assert imagekit.count("list") == 1


# --- persistent faults fail clearly ---------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_persistent_5xx_gives_status_message_help_operation_name(
    operation: str, client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.add_file("ops/existing.txt", b"there")
    route = ROUTE_OF[operation]
    imagekit.fail(route, 503, times=5, message="Down for maintenance.", help="Try later.")
    with pytest.raises(ImageKitStorageError) as caught:
        run_operation(operation, client, imagekit)
    error = caught.value
    assert type(error) is ImageKitStorageError
    assert error.status_code == 503
    assert error.message == "Down for maintenance."
    assert error.help == "Try later."
    assert error.operation == {"find": "search"}.get(operation, operation)
    assert error.name == ("ops/new.txt" if operation == "upload" else "ops/existing.txt") or (
        operation == "list" and error.name == "ops"
    )
    assert "Down for maintenance." in str(error)
    assert "Try later." in str(error)
    assert imagekit.count(route) == 3  # 1 + max_retries
    assert "/ops/new.txt" not in imagekit.files


@pytest.mark.parametrize("operation", OPERATIONS)
def test_persistent_connection_drops_are_connection_errors(
    operation: str, client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.add_file("ops/existing.txt", b"there")
    imagekit.drop(ROUTE_OF[operation], times=5)
    with pytest.raises(ImageKitConnectionError) as caught:
        run_operation(operation, client, imagekit)
    assert not isinstance(caught.value, ImageKitTimeoutError)
    assert caught.value.status_code is None
    assert imagekit.count(ROUTE_OF[operation]) == 3


def test_unreachable_server_is_connection_error(imagekit: FakeImageKitServer) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    made = ImageKitClient(make_settings(imagekit, base_url=f"http://127.0.0.1:{port}"))
    made.backoff_initial = 0.01
    with pytest.raises(ImageKitConnectionError, match="could not reach ImageKit"):
        made.find("a/b.txt")
    made.close()


def test_client_errors_are_not_retried(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.fail("delete", 400, message="Your request contains invalid fileId parameter.")
    with pytest.raises(ImageKitStorageError) as caught:
        client.delete("bad id", path="x.txt")
    assert caught.value.status_code == 400
    assert imagekit.count("delete") == 1


def test_non_seekable_stream_is_uploaded_but_not_retried(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    upload_file = File(io.BufferedReader(ForwardOnlyStream(b"streamed")), name="p.bin")
    client.upload(upload_file, path="pipe/ok.bin", overwrite=False, is_private=False)
    assert imagekit.files["/pipe/ok.bin"].data == b"streamed"

    imagekit.fail("upload", 500)
    with pytest.raises(ImageKitStorageError) as caught:
        client.upload(
            File(io.BufferedReader(ForwardOnlyStream(b"again")), name="p.bin"),
            path="pipe/again.bin",
            overwrite=False,
            is_private=False,
        )
    assert caught.value.status_code == 500
    assert imagekit.count("upload") == 2  # the good one, then one attempt


# --- nothing hangs --------------------------------------------------------------------

FAST = {"timeout": 0.4, "upload_timeout": 0.4}


@pytest.fixture
def fast_client(imagekit: FakeImageKitServer) -> Iterator[ImageKitClient]:
    made = ImageKitClient(make_settings(imagekit, **FAST))
    made.backoff_initial = 0.01
    yield made
    made.close()


@pytest.mark.parametrize("operation", OPERATIONS)
def test_stalled_server_times_out_within_the_deadline(
    operation: str, fast_client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.add_file("ops/existing.txt", b"there")
    imagekit.stall(ROUTE_OF[operation], 10, times=5)
    started = time.monotonic()
    with pytest.raises(ImageKitTimeoutError) as caught:
        run_operation(operation, fast_client, imagekit)
    elapsed = time.monotonic() - started
    assert 0.35 < elapsed < 0.4 + 0.3
    assert "0.4 s deadline" in str(caught.value)
    assert caught.value.operation == {"find": "search"}.get(operation, operation)


@pytest.mark.parametrize("operation", ["find", "list", "download"])
def test_trickling_server_times_out_within_the_deadline(
    operation: str, fast_client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    # Each read gets bytes well within any per-read timeout; only a deadline stops it.
    imagekit.add_file("ops/existing.txt", b"there" * 2000)
    imagekit.trickle(ROUTE_OF[operation], 50, times=5)
    started = time.monotonic()
    with pytest.raises(ImageKitTimeoutError):
        run_operation(operation, fast_client, imagekit)
    assert time.monotonic() - started < 0.4 + 0.3


def test_upload_answer_trickling_times_out(
    fast_client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.trickle("upload", 20, times=5)
    started = time.monotonic()
    with pytest.raises(ImageKitTimeoutError):
        upload(fast_client, "slow/answer.txt")
    assert time.monotonic() - started < 0.4 + 0.3


def test_deadline_covers_retries_and_waits(imagekit: FakeImageKitServer) -> None:
    made = ImageKitClient(make_settings(imagekit, timeout=0.8, max_retries=10))
    made.backoff_initial = 0.2
    imagekit.fail("list", 503, times=50)
    started = time.monotonic()
    with pytest.raises(ImageKitStorageError) as caught:
        made.find("a/b.txt")
    made.close()
    assert time.monotonic() - started < 0.8 + 0.3
    # It ends with ImageKit's own answer, the most useful thing to show.
    assert caught.value.status_code == 503
    assert imagekit.count("list") < 11


def test_a_slow_first_attempt_leaves_time_for_a_retry(imagekit: FakeImageKitServer) -> None:
    made = ImageKitClient(make_settings(imagekit, timeout=1.5))
    made.backoff_initial = 0.01
    imagekit.fail("list", 500)
    assert made.find("a/b.txt") is None
    made.close()


# --- concurrency ----------------------------------------------------------------------


def test_many_threads_share_one_client(
    client: ImageKitClient, imagekit: FakeImageKitServer
) -> None:
    imagekit.drop("upload", times=3, after_processing=True)
    imagekit.fail("upload", 503, times=3)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for index in range(10):
                path = f"threads/t{thread}/f{index}.txt"
                data = f"{thread}-{index}".encode()
                remote = upload(client, path, data)
                assert remote.path == path
                found = client.find(path)
                assert found is not None
                assert found.size == len(data)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(imagekit.files) == 8 * 10
    for thread in range(8):
        for index in range(10):
            stored = imagekit.files[f"/threads/t{thread}/f{index}.txt"]
            assert stored.data == f"{thread}-{index}".encode()
    assert client._sdk is not None


# --- secrets --------------------------------------------------------------------------


def test_no_key_in_errors_logs_or_reprs(
    imagekit: FakeImageKitServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, the SDK's, httpx's
    made = ImageKitClient(make_settings(imagekit, **FAST))
    made.backoff_initial = 0.01
    raised: list[BaseException] = []
    imagekit.fail("upload", 500, times=3)
    imagekit.drop("list", times=3)
    imagekit.stall("delete", 5)
    imagekit.fail("delivery", 403)
    for call in (
        lambda: upload(made, "s/x.txt"),
        lambda: made.find("s/x.txt"),
        lambda: made.delete("someid", path="s/x.txt"),
        lambda: made.download(f"{imagekit.url_endpoint}/s/x.txt", io.BytesIO(), path="s/x.txt"),
    ):
        with pytest.raises(ImageKitStorageError) as caught:
            call()
        raised.append(caught.value)
    upload(made, "s/ok.txt")
    made.close()
    # Also a server that echoes the key back must not get it into our messages.
    imagekit.fail("list", 500, message=f"bad key {KEY}", help=f"key was {KEY}")
    echo = ImageKitClient(make_settings(imagekit, max_retries=0))
    with pytest.raises(ImageKitStorageError) as caught:
        echo.find("s/x.txt")
    echo.close()
    raised.append(caught.value)

    basic = base64.b64encode(f"{KEY}:".encode()).decode()
    texts = [str(error) for error in raised] + [repr(error) for error in raised]
    texts += [str(getattr(error, field)) for error in raised for field in ("message", "help")]
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text, repr(made), repr(make_settings(imagekit))]
    assert len(caplog.records) > 10
    for text in texts:
        assert KEY not in text
        assert basic not in text


# --- the environment cannot change behaviour ------------------------------------------


def test_sdk_environment_variables_are_ignored(
    imagekit: FakeImageKitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        elsewhere = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("IMAGE_KIT_BASE_URL", elsewhere)
    monkeypatch.setenv("IMAGE_KIT_CUSTOM_HEADERS", "X-Injected: yes\nAuthorization: Basic Zm9v")
    monkeypatch.setenv("IMAGEKIT_PRIVATE_KEY", "env_key_should_not_be_used")
    monkeypatch.setenv("OPTIONAL_IMAGEKIT_IGNORES_THIS", "env_password")
    made = ImageKitClient(make_settings(imagekit))
    upload(made, "env/x.txt")
    assert made.find("env/x.txt") is not None
    made.close()
    # Both requests reached our server, authenticated with our key and an empty password.
    assert imagekit.count() == 2
    for request in imagekit.requests:
        assert request.status == 200
        assert "X-Injected" not in request.headers
        assert "x-injected" not in {name.lower() for name in request.headers}


def test_cloud_routing_ignores_image_kit_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_KIT_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("IMAGE_KIT_CUSTOM_HEADERS", "X-Injected: yes")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/upload"):
            return httpx.Response(200, json={"fileId": "id1", "filePath": "/a/b.txt", "size": 1})
        return httpx.Response(200, json=[])

    settings = resolve_options(
        {"private_key": KEY, "url_endpoint": "https://ik.imagekit.io/demo"}, environ={}
    )
    assert settings.base_url is None
    made = ImageKitClient(settings, _transport=httpx.MockTransport(answer))
    upload(made, "a/b.txt", b"x")
    assert made.find("a/b.txt") is None
    made.close()
    assert [str(request.url.copy_with(query=None)) for request in seen] == [
        "https://upload.imagekit.io/api/v1/files/upload",
        "https://api.imagekit.io/v1/files",
    ]
    expected = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    for request in seen:
        assert request.headers["authorization"] == expected
        assert "x-injected" not in request.headers


# --- defensive parsing (crafted answers at the HTTP edge) -----------------------------


def crafted(
    upload_answer: httpx.Response, list_answer: httpx.Response | None = None
) -> ImageKitClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/upload"):
            return upload_answer
        return list_answer or httpx.Response(200, json=[])

    settings = resolve_options(
        {
            "private_key": KEY,
            "url_endpoint": "https://ik.imagekit.io/demo",
            "base_url": "http://imagekit.test",
            "max_retries": 0,
        },
        environ={},
    )
    return ImageKitClient(settings, _transport=httpx.MockTransport(answer))


def test_non_json_answer_is_a_response_error() -> None:
    made = crafted(httpx.Response(200, text="<html>gateway</html>"))
    with pytest.raises(ImageKitResponseError, match="not JSON") as caught:
        upload(made, "a/b.txt")
    assert caught.value.operation == "upload"
    assert caught.value.name == "a/b.txt"


def test_json_of_the_wrong_shape_is_a_response_error() -> None:
    with pytest.raises(ImageKitResponseError, match="expected an object"):
        upload(crafted(httpx.Response(200, json=["x"])), "a/b.txt")
    made = crafted(httpx.Response(200, json={}), httpx.Response(200, json={"not": "a list"}))
    with pytest.raises(ImageKitResponseError, match="expected a list"):
        made.find("a/b.txt")


def test_mistyped_fields_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="django_imagekit_storage")
    made = crafted(
        httpx.Response(200, json={"fileId": "id1", "size": 12.0, "url": 5, "isPrivateFile": "true"})
    )
    remote = upload(made, "a/b.txt")
    assert remote == RemoteFile("a/b.txt", "id1", 12, None, None, True, None)
    assert "no usable filePath" in caplog.text

    made = crafted(httpx.Response(200, json={"fileId": "id1", "filePath": "/a/b.txt", "size": "x"}))
    assert upload(made, "a/b.txt").size is None
    assert "unusable size" in caplog.text


def test_missing_file_id_is_looked_up() -> None:
    entry = {"type": "file", "fileId": "id9", "filePath": "/a/b.txt", "size": 5}
    made = crafted(
        httpx.Response(200, json={"filePath": "/a/b.txt"}), httpx.Response(200, json=[entry])
    )
    assert upload(made, "a/b.txt").file_id == "id9"
    made = crafted(httpx.Response(200, json={"filePath": "/a/b.txt"}))
    with pytest.raises(ImageKitResponseError, match="no fileId"):
        upload(made, "a/b.txt")


def test_garbage_list_entries_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    good = {"type": "file", "fileId": "id1", "filePath": "/a/b.txt", "createdAt": "garbage"}
    made = crafted(
        httpx.Response(200, json={}),
        httpx.Response(200, json=[1, None, {"type": "file"}, {"type": "folder"}, good]),
    )
    found = made.find("a/b.txt")
    assert found is not None
    assert found.created_at is None
    assert "skipped" in caplog.text


def test_non_json_error_body_is_shown_briefly() -> None:
    made = crafted(httpx.Response(502, text="<html>Bad Gateway</html>" + "x" * 1000))
    with pytest.raises(ImageKitStorageError) as caught:
        upload(made, "a/b.txt")
    assert caught.value.status_code == 502
    assert caught.value.message is not None
    assert caught.value.message.startswith("<html>Bad Gateway</html>")
    assert len(caught.value.message) <= 200


def test_download_retry_starts_the_target_over() -> None:
    calls: list[int] = []

    class Broken(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b"partial-"
            raise httpx.ReadError("connection reset")

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(200, stream=Broken())
        return httpx.Response(200, content=b"complete")

    settings = resolve_options(
        {"private_key": KEY, "url_endpoint": "https://ik.imagekit.io/demo"}, environ={}
    )
    made = ImageKitClient(settings, _transport=httpx.MockTransport(answer))
    made.backoff_initial = 0.01

    class OldSpool(io.BytesIO):  # like SpooledTemporaryFile on Python 3.10
        seekable = None  # type: ignore[assignment]

    into = OldSpool(b"head:")
    into.seek(0, io.SEEK_END)
    assert made.download("https://ik.imagekit.io/demo/a.bin", into, path="a.bin") == 8
    assert into.getvalue() == b"head:complete"
    assert len(calls) == 2


# --- proxies from the environment -----------------------------------------------------


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_http_proxy_from_the_environment_is_used(
    imagekit: FakeImageKitServer, no_proxy_env: pytest.MonkeyPatch
) -> None:
    # The stand-in server answers absolute-form requests, so it can play the proxy for a
    # host name that does not resolve: only a proxied request can succeed.
    no_proxy_env.setenv("http_proxy", imagekit.base_url)
    made = ImageKitClient(make_settings(imagekit, base_url="http://imagekit.invalid"))
    upload(made, "proxied/x.txt", b"via proxy")
    assert made.find("proxied/x.txt") is not None
    made.close()
    assert imagekit.files["/proxied/x.txt"].data == b"via proxy"
    assert imagekit.count() == 2


def test_no_proxy_hosts_go_direct(
    imagekit: FakeImageKitServer, no_proxy_env: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a proxy that is not there
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    no_proxy_env.setenv("http_proxy", dead)
    no_proxy_env.setenv("no_proxy", "example.com, 127.0.0.1")
    made = ImageKitClient(make_settings(imagekit))
    assert made.find("direct/x.txt") is None
    made.close()
    assert imagekit.count("list") == 1


def test_a_full_page_with_garbage_entries_still_pages_on() -> None:
    # ImageKit pages by entries sent: a page of 1000 is full even if some are unusable.
    def entry(index: int) -> dict[str, object]:
        return {"type": "file", "fileId": f"id{index}", "filePath": f"/p/f{index}.txt"}

    pages = {0: [*(entry(index) for index in range(999)), None], 1000: [entry(1000)]}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages.get(int(request.url.params["skip"]), []))

    made = crafted(httpx.Response(200, json={}))
    made._transport_override = httpx.MockTransport(answer)
    listed = [remote.path for remote in made.list_files("p", recursive=False)]
    assert len(listed) == 1000
    assert listed[-1] == "p/f1000.txt"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        pytest.param(
            {"status_code": 200, "headers": {"Content-Encoding": "gzip"}, "body": b"not gzip"},
            "cannot be decoded",
            id="bad-gzip",
        ),
        pytest.param(
            {"status_code": 302, "headers": {"Location": "https://ik.imagekit.io/demo/a.bin"}},
            "redirects",
            id="redirect-loop",
        ),
    ],
)
def test_unusable_delivery_answers_are_response_errors(
    answer: dict[str, Any], problem: str
) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        # A stream: httpx decodes content= eagerly, here.
        body = httpx.ByteStream(answer.get("body", b""))
        return httpx.Response(answer["status_code"], headers=answer["headers"], stream=body)

    settings = resolve_options(
        {"private_key": KEY, "url_endpoint": "https://ik.imagekit.io/demo"}, environ={}
    )
    made = ImageKitClient(settings, _transport=httpx.MockTransport(respond))
    with pytest.raises(ImageKitResponseError, match=problem) as caught:
        made.download("https://ik.imagekit.io/demo/a.bin", io.BytesIO(), path="a.bin")
    made.close()
    assert (caught.value.operation, caught.value.name) == ("download", "a.bin")
