"""client.py through the real imagekitio SDK over real HTTP to the stand-in server."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from django.core.files.base import ContentFile, File

from django_imagekit_storage.client import ImageKitClient, RemoteFile
from django_imagekit_storage.conf import StorageSettings, resolve_options
from django_imagekit_storage.exceptions import (
    ImageKitAuthenticationError,
    ImageKitFileExistsError,
    ImageKitResponseError,
    ImageKitStorageError,
)
from django_imagekit_storage.testing import FakeImageKitServer

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
def client(imagekit: FakeImageKitServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImageKitClient]:
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
    assert error.message is not None and "already exists" in error.message
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
    client.delete(stored.file_id, path="gone/soon.txt")
    assert "/gone/soon.txt" not in imagekit.files
    client.delete(stored.file_id, path="gone/soon.txt")  # already gone: fine
    assert imagekit.count("delete") == 2


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
    with pytest.raises(FileNotFoundError, match="dl/none.bin"):
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


def test_repr_has_no_key(client: ImageKitClient) -> None:
    assert KEY not in repr(client)
    upload(client, "r/x.txt")
    assert KEY not in repr(client)


def test_logs_info_per_upload_and_delete(
    client: ImageKitClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="django_imagekit_storage")
    remote = upload(client, "log/x.txt", b"abc")
    client.delete(remote.file_id, path=remote.path)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("upload of 'log/x.txt': 3 bytes in" in m for m in infos)
    assert any("delete of 'log/x.txt': deleted in" in m for m in infos)


# Keep the imports used by later tests honest.
_ = (ImageKitResponseError, ImageKitStorageError)
