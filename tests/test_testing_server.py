"""The stand-in ImageKit server, driven by the real imagekitio SDK and by raw HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
import imagekitio
import pytest
from imagekitio import ImageKit

from django_imagekit_storage.testing import FakeImageKitServer, RecordedRequest, StoredFile

UNIQUE = r"[A-Za-z0-9]{9}"
HELP = "For support kindly contact us at support@imagekit.io ."


def png(width: int, height: int) -> bytes:
    # Signature and IHDR are all the server reads.
    ihdr = struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\x00" * 4


def jpeg(width: int, height: int) -> bytes:
    app0 = (
        b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    )
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


# Clients are shared by the module (creating one costs ~0.1 s); the server is reset per test.
@pytest.fixture(scope="module")
def shared_sdk(imagekit_server_session: FakeImageKitServer) -> Iterator[ImageKit]:
    with ImageKit(
        private_key=imagekit_server_session.private_key,
        base_url=imagekit_server_session.base_url,
        max_retries=0,
        timeout=5,
    ) as sdk:
        yield sdk


@pytest.fixture
def client(shared_sdk: ImageKit, imagekit_server: FakeImageKitServer) -> ImageKit:
    return shared_sdk


@pytest.fixture(scope="module")
def shared_web() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as session:
        yield session


@pytest.fixture
def web(shared_web: httpx.Client, imagekit_server: FakeImageKitServer) -> httpx.Client:
    return shared_web


def raw(
    server: FakeImageKitServer,
    method: str,
    path: str,
    body: bytes | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
    *,
    auth: bool = True,
    chunked: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    """One request over http.client, byte for byte as written here."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    sent = dict(headers or {})
    if auth:
        token = base64.b64encode(f"{server.private_key}:".encode()).decode()
        sent["Authorization"] = f"Basic {token}"
    try:
        connection.request(method, path, body=body, headers=sent, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def multipart(fields: dict[str, str], file: tuple[str, bytes] | None) -> tuple[bytes, str]:
    boundary = "testboundary1234"
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    if file is not None:
        filename, data = file
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def sign(server: FakeImageKitServer, after_endpoint: str, expiry: int) -> str:
    # ImageKit's algorithm, written out independently of the server and of delivery.py.
    message = (after_endpoint + str(expiry)).encode()
    return hmac.new(server.private_key.encode(), message, hashlib.sha1).hexdigest()


# Upload


def test_upload_defaults_to_a_unique_name_in_the_root(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    result = client.files.upload(file=b"hello", file_name="note.txt")
    assert re.fullmatch(rf"note_{UNIQUE}\.txt", result.name or "")
    assert result.file_path == "/" + (result.name or "")
    assert result.url == imagekit_server.url_endpoint + result.file_path
    assert result.size == 5
    assert result.file_type == "non-image"
    assert result.tags is None  # only with response_fields
    stored = imagekit_server.files[result.file_path]
    assert (stored.data, stored.mime, stored.file_id) == (b"hello", "text/plain", result.file_id)
    assert stored.created_at.tzinfo is not None
    assert stored.width is None


def test_upload_sanitises_the_name_and_folder(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    result = client.files.upload(
        file=b"x",
        file_name="my photo (1)ü.jpg",
        folder="my folder//sub+dir/",
        use_unique_file_name=False,
    )
    assert result.file_path == "/my_folder/sub_dir/my_photo__1__.jpg"
    assert imagekit_server.folders == ["/my_folder/", "/my_folder/sub_dir/"]


def test_upload_overwrites_by_default_keeping_the_file_id(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    first = client.files.upload(file=b"one", file_name="a.txt", use_unique_file_name=False)
    second = client.files.upload(file=b"two!", file_name="a.txt", use_unique_file_name=False)
    assert second.file_id == first.file_id
    assert second.version_info is not None
    assert second.version_info.name == "Version 2"
    stored = imagekit_server.files["/a.txt"]
    assert (stored.data, stored.size, stored.version) == (b"two!", 4, 2)
    assert stored.updated_at >= stored.created_at


def test_upload_refuses_a_taken_path_without_overwrite(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    client.files.upload(file=b"one", file_name="a.txt", use_unique_file_name=False)
    with pytest.raises(imagekitio.BadRequestError) as caught:
        client.files.upload(
            file=b"two", file_name="a.txt", use_unique_file_name=False, overwrite_file=False
        )
    assert caught.value.status_code == 400
    assert caught.value.body["message"].startswith(  # type: ignore[index]
        "A file with the same name already exists at the exact location"
    )
    assert caught.value.response.headers["content-type"] == "application/json"
    assert imagekit_server.files["/a.txt"].data == b"one"
    # A unique name never collides, whatever overwriteFile says.
    other = client.files.upload(file=b"two", file_name="a.txt", overwrite_file=False)
    assert other.file_path != "/a.txt"


def test_upload_private_file_with_tags_metadata_and_response_fields(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    result = client.files.upload(
        file=png(3, 2),
        file_name="p.png",
        folder="/secret",
        is_private_file=True,
        tags=["a", "b"],
        custom_metadata={"owner": 7},
        response_fields=["tags", "isPrivateFile", "customMetadata"],
    )
    assert result.tags == ["a", "b"]
    assert result.is_private_file is True
    assert result.custom_metadata == {"owner": 7}
    assert (result.width, result.height, result.file_type) == (3, 2, "image")
    assert result.thumbnail_url is not None
    stored = imagekit_server.files[result.file_path or ""]
    assert stored.is_private
    assert stored.tags == ("a", "b")
    assert dict(stored.custom_metadata) == {"owner": 7}
    assert stored.mime == "image/png"


def test_upload_sniffs_jpeg_dimensions(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    result = client.files.upload(file=jpeg(640, 480), file_name="x.bin")
    stored = imagekit_server.files[result.file_path or ""]
    assert (stored.mime, stored.width, stored.height) == ("image/jpeg", 640, 480)


def test_streamed_upload_arrives_chunked(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    class Stream:  # not IOBase, like a Django File: the SDK streams it
        def __init__(self) -> None:
            self.buffer = io.BytesIO(b"streamed" * 10000)

        def read(self, size: int = -1) -> bytes:
            return self.buffer.read(size)

    result = client.files.upload(
        file=("s.bin", Stream(), "application/octet-stream"),  # type: ignore[arg-type]  # duck-typed, as the SDK allows
        file_name="s.bin",
        use_unique_file_name=False,
    )
    assert imagekit_server.files["/s.bin"].data == b"streamed" * 10000
    assert result.size == 80000
    (request,) = imagekit_server.requests
    assert request.headers["Transfer-Encoding"] == "chunked"
    assert request.form["useUniqueFileName"] == "false"


def test_raw_chunked_multipart_upload(imagekit_server: FakeImageKitServer) -> None:
    body, content_type = multipart(
        {"fileName": "c.txt", "useUniqueFileName": "false"}, ("c", b"chunky")
    )
    pieces = iter([body[:7], body[7:50], body[50:]])
    status, headers, answer = raw(
        imagekit_server,
        "POST",
        "/api/v1/files/upload",
        pieces,
        {"Content-Type": content_type},
        chunked=True,
    )
    assert status == 200, answer
    assert headers["content-type"] == "application/json"
    assert json.loads(answer)["filePath"] == "/c.txt"
    assert imagekit_server.files["/c.txt"].data == b"chunky"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (base64.b64encode(b"from base64").decode(), b"from base64"),
        ("data:text/plain;base64," + base64.b64encode(b"data uri").decode(), b"data uri"),
        ("data:text/plain,plain%20text", b"plain text"),
    ],
)
def test_upload_file_as_text_field(
    imagekit_server: FakeImageKitServer, value: str, expected: bytes
) -> None:
    body, content_type = multipart(
        {"fileName": "t.txt", "useUniqueFileName": "false", "file": value}, None
    )
    status, _, answer = raw(
        imagekit_server, "POST", "/api/v1/files/upload", body, {"Content-Type": content_type}
    )
    assert status == 200, answer
    assert imagekit_server.files["/t.txt"].data == expected


@pytest.mark.parametrize(
    ("fields", "file", "content_type", "message"),
    [
        ({"fileName": "a"}, None, None, "Missing file parameter"),
        ({}, ("a", b"x"), None, "Missing fileName parameter"),
        ({"fileName": "a", "file": "%%%not base64"}, None, None, "neither base64 nor a data URI"),
        ({"fileName": "a", "file": "https://example.com/a.jpg"}, None, None, "cannot fetch"),
        ({"fileName": "a", "isPrivateFile": "yes"}, ("a", b"x"), None, "isPrivateFile"),
        ({"fileName": "a", "customMetadata": "[1]"}, ("a", b"x"), None, "customMetadata"),
        ({"fileName": "a", "responseFields": "bogus"}, ("a", b"x"), None, "responseFields"),
        ({"fileName": "a"}, ("a", b"x"), "application/json", "multipart/form-data"),
    ],
)
def test_upload_rejects_bad_forms(
    imagekit_server: FakeImageKitServer,
    fields: dict[str, str],
    file: tuple[str, bytes] | None,
    content_type: str | None,
    message: str,
) -> None:
    body, multipart_type = multipart(fields, file)
    status, headers, answer = raw(
        imagekit_server,
        "POST",
        "/api/v1/files/upload",
        body,
        {"Content-Type": content_type or multipart_type},
    )
    assert status == 400
    assert headers["content-type"] == "application/json"
    payload = json.loads(answer)
    assert message in payload["message"]
    assert payload["help"] == HELP
    assert imagekit_server.files == {}


@pytest.mark.parametrize(
    "body",
    [
        b'--testboundary1234\r\nContent-Disposition: form-data; name="fileName"\r\n\r\na',
        b"--testboundary1234\r\nno header block--testboundary1234--\r\n",
        b"--testboundary1234\r\nX-Nothing: 1\r\n\r\nvalue\r\n--testboundary1234--\r\n",
    ],
)
def test_malformed_multipart_is_a_400(imagekit_server: FakeImageKitServer, body: bytes) -> None:
    status, _, answer = raw(
        imagekit_server,
        "POST",
        "/api/v1/files/upload",
        body,
        {"Content-Type": "multipart/form-data; boundary=testboundary1234"},
    )
    assert status == 400
    assert "Malformed multipart" in json.loads(answer)["message"]


def test_multipart_preamble_is_skipped_and_a_missing_opening_boundary_refused(
    imagekit_server: FakeImageKitServer,
) -> None:
    body, content_type = multipart({"fileName": "p.txt", "useUniqueFileName": "false"}, ("p", b"p"))
    status, _, answer = raw(
        imagekit_server,
        "POST",
        "/api/v1/files/upload",
        b"preamble to ignore\r\n" + body,
        {"Content-Type": content_type},
    )
    assert status == 200, answer
    assert imagekit_server.files["/p.txt"].data == b"p"
    status, _, answer = raw(
        imagekit_server,
        "POST",
        "/api/v1/files/upload",
        b"no boundary here",
        {"Content-Type": content_type},
    )
    assert status == 400
    assert "opening boundary" in json.loads(answer)["message"]


def test_malformed_chunked_framing_is_a_400(imagekit_server: FakeImageKitServer) -> None:
    status, headers, answer = raw(
        imagekit_server,
        "POST",
        "/api/v1/files/upload",
        b"zz\r\nabc\r\n0\r\n\r\n",
        {"Transfer-Encoding": "chunked", "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert status == 400
    assert headers["connection"] == "close"
    assert "chunk" in json.loads(answer)["message"]


def test_concurrent_uploads_all_land(client: ImageKit, imagekit_server: FakeImageKitServer) -> None:
    errors: list[BaseException] = []

    def upload(index: int) -> None:
        try:
            client.files.upload(file=str(index).encode(), file_name="same.txt")
        except imagekitio.ImageKitError as error:
            errors.append(error)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(f.data for f in imagekit_server.files.values()) == [
        str(i).encode() for i in range(8)
    ]


# Details, delete, bulk delete, purge


def test_details_returns_the_file_object(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    created = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    stored = imagekit_server.add_file(
        "/media/d.txt", b"data", tags=["t"], custom_metadata={"k": "v"}, created_at=created
    )
    details = client.files.get(stored.file_id)
    assert details.file_path == "/media/d.txt"
    assert details.name == "d.txt"
    assert details.created_at == created
    assert details.updated_at == created
    assert (details.size, details.mime, details.tags) == (4, "text/plain", ["t"])
    assert details.custom_metadata == {"k": "v"}
    assert details.is_private_file is False
    assert details.url == imagekit_server.url_endpoint + "/media/d.txt"


def test_stored_times_equal_what_the_api_reports(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    # The API has millisecond precision; so do the stored times.
    result = client.files.upload(file=b"x", file_name="t.txt")
    stored = imagekit_server.files[result.file_path or ""]
    assert stored.created_at.microsecond % 1000 == 0
    details = client.files.get(stored.file_id)
    assert (details.created_at, details.updated_at) == (stored.created_at, stored.updated_at)


def test_details_of_a_missing_file_is_a_404(client: ImageKit) -> None:
    with pytest.raises(imagekitio.NotFoundError) as caught:
        client.files.get("0" * 24)
    assert caught.value.body == {"message": "The requested file does not exist.", "help": HELP}


def test_delete_then_delete_again(client: ImageKit, imagekit_server: FakeImageKitServer) -> None:
    stored = imagekit_server.add_file("x.txt", b"x")
    client.files.delete(stored.file_id)
    assert imagekit_server.files == {}
    assert imagekit_server.requests[-1].status == 204
    with pytest.raises(imagekitio.NotFoundError):
        client.files.delete(stored.file_id)


def test_bulk_delete_is_all_or_nothing(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    a = imagekit_server.add_file("a.txt", b"a")
    b = imagekit_server.add_file("b.txt", b"b")
    with pytest.raises(imagekitio.NotFoundError) as caught:
        client.files.bulk.delete(file_ids=[a.file_id, "f" * 24])
    assert caught.value.body["missingFileIds"] == ["f" * 24]  # type: ignore[index]
    assert len(imagekit_server.files) == 2
    result = client.files.bulk.delete(file_ids=[a.file_id, b.file_id])
    assert result.successfully_deleted_file_ids == [a.file_id, b.file_id]
    assert imagekit_server.files == {}


def test_bulk_delete_needs_file_ids(imagekit_server: FakeImageKitServer) -> None:
    status, _, answer = raw(imagekit_server, "POST", "/v1/files/batch/deleteByFileIds", b"{}")
    assert status == 400
    assert "fileIds" in json.loads(answer)["message"]
    status, _, _ = raw(imagekit_server, "POST", "/v1/files/batch/deleteByFileIds", b"not json")
    assert status == 400


def test_purge_records_the_url(client: ImageKit, imagekit_server: FakeImageKitServer) -> None:
    result = client.cache.invalidation.create(url="https://ik.imagekit.io/demo/a.jpg")
    assert result.request_id
    assert imagekit_server.requests[-1].status == 201
    assert imagekit_server.purges == ["https://ik.imagekit.io/demo/a.jpg"]
    assert client.cache.invalidation.get(result.request_id).status == "Completed"
    status, _, _ = raw(imagekit_server, "POST", "/v1/files/purge", b"{}")
    assert status == 400


# List and search


@pytest.fixture
def library(imagekit_server: FakeImageKitServer) -> FakeImageKitServer:
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for minutes, path in enumerate(
        [
            "/root.txt",
            "/media/a.jpg",
            "/media/ab.jpg",
            "/media/b.txt",
            "/media/deep/a.jpg",
            "/other/a.jpg",
        ]
    ):
        imagekit_server.add_file(
            path, b"x" * (minutes + 1), created_at=base + timedelta(minutes=minutes)
        )
    return imagekit_server


def paths(items: Sequence[object]) -> list[str]:
    out = []
    for item in items:
        kind = getattr(item, "type", None)
        out.append(getattr(item, "folder_path" if kind == "folder" else "file_path", None) or "?")
    return out


def test_list_one_folder_returns_files_and_folders(
    client: ImageKit, library: FakeImageKitServer
) -> None:
    items = client.assets.list(path="/media/")
    assert sorted(paths(items)) == ["/media/a.jpg", "/media/ab.jpg", "/media/b.txt", "/media/deep"]
    folder = next(item for item in items if item.type == "folder")
    assert isinstance(folder, imagekitio.types.Folder)
    assert folder.name == "deep"
    assert client.assets.list(path="/media") == items  # trailing "/" optional
    # Oldest first: the root file, then the folders its neighbours created.
    assert paths(client.assets.list(path="/")) == ["/root.txt", "/media", "/other"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("file", ["/media/a.jpg", "/media/ab.jpg", "/media/b.txt"]),
        ("folder", ["/media/deep"]),
        ("file-version", []),
    ],
)
def test_list_type(
    client: ImageKit, library: FakeImageKitServer, kind: str, expected: list[str]
) -> None:
    assert paths(client.assets.list(path="/media/", type=kind)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('name = "a.jpg"', ["/media/a.jpg", "/media/deep/a.jpg", "/other/a.jpg"]),
        ('name : "a"', ["/media/a.jpg", "/media/ab.jpg", "/media/deep/a.jpg", "/other/a.jpg"]),
        ('path = "/media/"', ["/media/a.jpg", "/media/ab.jpg", "/media/b.txt", "/media/deep"]),
        (
            'path : "/media/" AND type = "file"',
            ["/media/a.jpg", "/media/ab.jpg", "/media/b.txt", "/media/deep/a.jpg"],
        ),
        ('path = "/media/" AND name = "a.jpg"', ["/media/a.jpg"]),
        ('type = "folder"', ["/media", "/media/deep", "/other"]),
        ("name='b.txt' and path='/media'", ["/media/b.txt"]),
    ],
)
def test_search_query_subset(
    client: ImageKit, library: FakeImageKitServer, query: str, expected: list[str]
) -> None:
    assert sorted(paths(client.assets.list(search_query=query))) == expected


def test_search_query_within_a_path_and_type_parameter_ignored(
    client: ImageKit, library: FakeImageKitServer
) -> None:
    # As ImageKit documents: with searchQuery, the type parameter has no effect.
    items = client.assets.list(path="/media/", search_query='name : "a"', type="folder")
    assert paths(items) == ["/media/a.jpg", "/media/ab.jpg"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('size > "10"', "Invalid searchQuery"),
        ('tags = "x"', "only the name, path and type"),
        ('name = "a" OR name = "b"', "joined by AND"),
        ("name = a.jpg", "Invalid searchQuery"),
        ('name = "a" AND', "Invalid searchQuery"),
        ('type = "files"', "type is file, file-version, folder or all"),
    ],
)
def test_unsupported_search_query_is_a_400(client: ImageKit, query: str, message: str) -> None:
    with pytest.raises(imagekitio.BadRequestError) as caught:
        client.assets.list(search_query=query)
    assert message in caught.value.body["message"]  # type: ignore[index]


def test_sort_orders(client: ImageKit, library: FakeImageKitServer) -> None:
    files = {"type": "file", "path": "/media/"}
    assert paths(client.assets.list(**files, sort="DESC_CREATED")) == [  # type: ignore[arg-type]
        "/media/b.txt",
        "/media/ab.jpg",
        "/media/a.jpg",
    ]
    assert paths(client.assets.list(**files, sort="ASC_NAME")) == [  # type: ignore[arg-type]
        "/media/a.jpg",
        "/media/ab.jpg",
        "/media/b.txt",
    ]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "skip=-1",
        "type=files",
        "fileType=video",
        "sort=SIDEWAYS",
    ],
)
def test_bad_list_parameters_are_a_400(imagekit_server: FakeImageKitServer, query: str) -> None:
    status, headers, answer = raw(imagekit_server, "GET", f"/v1/files?{query}")
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(answer)["help"] == HELP


def test_pagination_beyond_1000(client: ImageKit, imagekit_server: FakeImageKitServer) -> None:
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for index in range(1005):
        imagekit_server.add_file(f"/many/{index:04}.txt", b"", created_at=base)
    first = client.assets.list(path="/many/")  # default limit: 1000
    assert len(first) == 1000
    rest = client.assets.list(path="/many/", skip=1000, limit=1000)
    assert len(rest) == 5
    everything = paths(first) + paths(rest)
    assert everything == [f"/many/{index:04}.txt" for index in range(1005)]
    assert paths(client.assets.list(path="/many/", skip=10, limit=2)) == [
        "/many/0010.txt",
        "/many/0011.txt",
    ]


def test_file_type_filter(client: ImageKit, imagekit_server: FakeImageKitServer) -> None:
    imagekit_server.add_file("i.png", png(1, 1))
    imagekit_server.add_file("t.txt", b"t")
    assert paths(client.assets.list(file_type="image", type="file")) == ["/i.png"]
    assert paths(client.assets.list(file_type="non-image", type="file")) == ["/t.txt"]


def test_folders_outlive_their_files(client: ImageKit, imagekit_server: FakeImageKitServer) -> None:
    stored = imagekit_server.add_file("gone/x.txt", b"x")
    client.files.delete(stored.file_id)
    assert paths(client.assets.list()) == ["/gone"]


# Delivery


def test_delivery_serves_bytes_with_content_type(
    imagekit_server: FakeImageKitServer, web: httpx.Client
) -> None:
    imagekit_server.add_file("/media/p.png", png(2, 2))
    response = web.get(imagekit_server.url_endpoint + "/media/p.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == png(2, 2)
    # Transformations are ignored, as query and as path segment.
    assert web.get(imagekit_server.url_endpoint + "/media/p.png?tr=w-10").content == png(2, 2)
    assert web.get(imagekit_server.url_endpoint + "/tr:w-10,h-5/media/p.png").content == png(2, 2)
    head = web.head(imagekit_server.url_endpoint + "/media/p.png")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(png(2, 2)))


def test_delivery_of_a_missing_file_is_a_404(
    imagekit_server: FakeImageKitServer, web: httpx.Client
) -> None:
    response = web.get(imagekit_server.url_endpoint + "/nothing.jpg")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    # Outside the endpoint: no route at all.
    assert web.get(imagekit_server.base_url + "/elsewhere/a.jpg").status_code == 404


def test_delivery_needs_no_auth(imagekit_server: FakeImageKitServer) -> None:
    imagekit_server.add_file("a.txt", b"a")
    status, _, body = raw(imagekit_server, "GET", "/demo/a.txt", auth=False)
    assert (status, body) == (200, b"a")


def test_private_file_needs_a_valid_signature(
    client: ImageKit, imagekit_server: FakeImageKitServer, web: httpx.Client
) -> None:
    imagekit_server.add_file("/private/s.txt", b"secret", is_private=True)
    plain = imagekit_server.url_endpoint + "/private/s.txt"
    refused = web.get(plain)
    assert refused.status_code == 401
    assert "signed" in refused.json()["message"]

    signed = client.helper.build_url(
        src="/private/s.txt",
        url_endpoint=imagekit_server.url_endpoint,
        transformation=[{"width": 300, "height": 200}],
        signed=True,
        expires_in=300,
    )
    assert "ik-t=" in signed
    response = web.get(signed)
    assert (response.status_code, response.content) == (200, b"secret")

    forever = client.helper.build_url(
        src="/private/s.txt", url_endpoint=imagekit_server.url_endpoint, signed=True
    )
    assert "ik-t=" not in forever
    assert web.get(forever).status_code == 200


def test_tampered_and_expired_signatures_are_refused(
    imagekit_server: FakeImageKitServer, web: httpx.Client
) -> None:
    imagekit_server.add_file("/private/s.txt", b"secret", is_private=True)
    endpoint = imagekit_server.url_endpoint
    future = int(time.time()) + 60
    good = sign(imagekit_server, "private/s.txt?tr=w-100", future)
    assert (
        web.get(f"{endpoint}/private/s.txt?tr=w-100&ik-t={future}&ik-s={good}").status_code == 200
    )

    tampered = [
        f"{endpoint}/private/s.txt?tr=w-999&ik-t={future}&ik-s={good}",  # other transformation
        f"{endpoint}/private/s.txt?tr=w-100&ik-t={future + 1}&ik-s={good}",  # later expiry
        f"{endpoint}/private/s.txt?tr=w-100&ik-t={future}&ik-s={'0' * 40}",
        f"{endpoint}/private/s.txt?tr=w-100&ik-t=soon&ik-s={good}",
        f"{endpoint}/private/s.txt?tr=w-100&ik-t={future}&ik-s={good}&ik-s={good}",
    ]
    for url in tampered:
        assert web.get(url).status_code == 401, url

    past = int(time.time()) - 1
    expired = sign(imagekit_server, "private/s.txt", past)
    response = web.get(f"{endpoint}/private/s.txt?ik-t={past}&ik-s={expired}")
    assert response.status_code == 401
    assert "expired" in response.json()["message"]

    other_key = hmac.new(b"another key", b"private/s.txt9999999999", hashlib.sha1).hexdigest()
    assert web.get(f"{endpoint}/private/s.txt?ik-s={other_key}").status_code == 401


def test_a_public_file_with_a_bad_signature_is_refused(
    imagekit_server: FakeImageKitServer, web: httpx.Client
) -> None:
    imagekit_server.add_file("p.txt", b"p")
    assert web.get(imagekit_server.url_endpoint + "/p.txt?ik-s=" + "0" * 40).status_code == 401


# Authentication


def test_wrong_key_is_imagekits_403(imagekit_server: FakeImageKitServer) -> None:
    with ImageKit(private_key="wrong", base_url=imagekit_server.base_url, max_retries=0) as sdk:
        with pytest.raises(imagekitio.PermissionDeniedError) as caught:
            sdk.assets.list()
        with pytest.raises(imagekitio.PermissionDeniedError):
            sdk.files.upload(file=b"x", file_name="x.txt")
    assert caught.value.body == {"message": "Your account cannot be authenticated.", "help": HELP}
    assert imagekit_server.files == {}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer private_test_key",
        "Basic %%%",
        "Basic " + base64.b64encode(b"private_test_keyX:").decode(),
    ],
)
def test_bad_authorization_headers_are_refused(
    imagekit_server: FakeImageKitServer, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    status, response_headers, body = raw(
        imagekit_server, "GET", "/v1/files", headers=headers, auth=False
    )
    assert status == 403
    assert response_headers["content-type"] == "application/json"
    assert json.loads(body)["message"] == "Your account cannot be authenticated."


def test_any_password_is_accepted(imagekit_server: FakeImageKitServer) -> None:
    # The SDK sends "do_not_set" by default; the documented form is an empty password.
    for password in ("", "do_not_set"):
        token = base64.b64encode(f"{imagekit_server.private_key}:{password}".encode()).decode()
        status, _, _ = raw(
            imagekit_server,
            "GET",
            "/v1/files",
            headers={"Authorization": f"Basic {token}"},
            auth=False,
        )
        assert status == 200


def test_unknown_api_route_is_a_json_404(imagekit_server: FakeImageKitServer) -> None:
    status, headers, body = raw(imagekit_server, "PUT", "/v1/files/abc")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert "No ImageKit API route" in json.loads(body)["message"]
    assert imagekit_server.requests[-1].route is None


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"OPTIONS /v1/files HTTP/1.1\r\nHost: x\r\n\r\n", 501, id="method"),
        pytest.param(
            b"GET /v1/files HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", 431, id="header"
        ),
    ],
)
def test_errors_http_server_answers_itself_are_json_too(
    imagekit_server: FakeImageKitServer, request_bytes: bytes, status: int
) -> None:
    with socket.create_connection(("127.0.0.1", imagekit_server.port), timeout=5) as connection:
        connection.sendall(request_bytes)
        response = http.client.HTTPResponse(connection)
        response.begin()
        body = response.read()
    assert response.status == status
    assert response.getheader("content-type") == "application/json"
    assert set(json.loads(body)) == {"message", "help"}


# Request log


def test_request_log_and_count(client: ImageKit, imagekit_server: FakeImageKitServer) -> None:
    client.files.upload(file=b"x", file_name="a.txt", tags=["t"])
    client.assets.list(path="/", limit=5)
    upload, listing = imagekit_server.requests
    assert isinstance(upload, RecordedRequest)
    assert (upload.method, upload.path, upload.route, upload.status) == (
        "POST",
        "/api/v1/files/upload",
        "upload",
        200,
    )
    assert upload.form == {"fileName": "a.txt", "tags": "t"}
    assert "Authorization" not in upload.headers
    assert imagekit_server.private_key not in repr(imagekit_server.requests)
    assert listing.query == {"path": ["/"], "limit": ["5"]}
    assert upload.time <= listing.time
    assert imagekit_server.count() == 2
    assert imagekit_server.count("upload") == 1
    assert imagekit_server.count(method="get") == 1
    assert imagekit_server.count("list", "POST") == 0
    with pytest.raises(ValueError, match="Unknown route"):
        imagekit_server.count("uploads")  # type: ignore[arg-type]
    imagekit_server.clear_requests()
    assert imagekit_server.requests == []
    assert len(imagekit_server.files) == 1


def test_reset_forgets_everything(client: ImageKit, imagekit_server: FakeImageKitServer) -> None:
    imagekit_server.add_file("a/b.txt", b"x")
    client.cache.invalidation.create(url="u")
    imagekit_server.fail("list")
    imagekit_server.reset()
    assert imagekit_server.files == {}
    assert imagekit_server.folders == []
    assert imagekit_server.requests == []
    assert imagekit_server.purges == []
    assert client.assets.list() == []  # the fault is gone too


# Fault injection


def test_fail_answers_the_status_then_recovers(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    imagekit_server.fail("upload", 429, times=2, headers={"Retry-After": "0"})
    for _ in range(2):
        with pytest.raises(imagekitio.RateLimitError) as caught:
            client.files.upload(file=b"x", file_name="a.txt")
        assert caught.value.response.headers["retry-after"] == "0"
        assert caught.value.body["message"].startswith("Too many requests")  # type: ignore[index]
    assert imagekit_server.files == {}  # failed requests are not processed
    client.files.upload(file=b"x", file_name="a.txt")
    assert [r.status for r in imagekit_server.requests] == [429, 429, 200]


def test_fail_with_message_and_help(client: ImageKit, imagekit_server: FakeImageKitServer) -> None:
    imagekit_server.fail("details", 503, message="Down for a bit.", help="Try later.")
    with pytest.raises(imagekitio.InternalServerError) as caught:
        client.files.get("x")
    assert caught.value.status_code == 503
    assert caught.value.body == {"message": "Down for a bit.", "help": "Try later."}


def test_sdk_retries_through_injected_failures(imagekit_server: FakeImageKitServer) -> None:
    imagekit_server.fail("list", 500, times=2, headers={"Retry-After-Ms": "1"})
    with ImageKit(
        private_key=imagekit_server.private_key, base_url=imagekit_server.base_url, max_retries=2
    ) as sdk:
        assert sdk.assets.list() == []
    assert imagekit_server.count("list") == 3


def test_faults_queue_in_order_per_route(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    imagekit_server.fail("list", 500)
    imagekit_server.fail("list", 409)
    imagekit_server.add_file("a.txt", b"a")
    client.files.get(imagekit_server.files["/a.txt"].file_id)  # other routes unaffected
    with pytest.raises(imagekitio.InternalServerError):
        client.assets.list()
    with pytest.raises(imagekitio.ConflictError):
        client.assets.list()
    assert len(client.assets.list()) == 1


def test_skip_lets_requests_through_before_the_fault(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    # e.g. the second of two uploads fails: the first is stored, the second is not.
    imagekit_server.fail("upload", 500, skip=1)
    client.files.upload(file=b"1", file_name="first.txt", use_unique_file_name=False)
    with pytest.raises(imagekitio.InternalServerError):
        client.files.upload(file=b"2", file_name="second.txt", use_unique_file_name=False)
    client.files.upload(file=b"3", file_name="third.txt", use_unique_file_name=False)
    assert sorted(imagekit_server.files) == ["/first.txt", "/third.txt"]
    assert [r.status for r in imagekit_server.requests] == [200, 500, 200]


def test_skip_counts_once_the_fault_is_next_in_line(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    imagekit_server.fail("list", 500)
    imagekit_server.drop("list", skip=1)
    with pytest.raises(imagekitio.InternalServerError):
        client.assets.list()
    assert client.assets.list() == []  # skipped by the drop
    with pytest.raises(imagekitio.APIConnectionError):
        client.assets.list()
    assert client.assets.list() == []


def test_drop_before_processing(client: ImageKit, imagekit_server: FakeImageKitServer) -> None:
    imagekit_server.drop("upload")
    with pytest.raises(imagekitio.APIConnectionError):
        client.files.upload(file=b"x", file_name="a.txt", use_unique_file_name=False)
    assert imagekit_server.files == {}
    assert imagekit_server.requests[0].status is None
    client.files.upload(file=b"x", file_name="a.txt", use_unique_file_name=False)
    assert "/a.txt" in imagekit_server.files


def test_drop_after_processing_loses_only_the_answer(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    imagekit_server.drop("upload", after_processing=True)
    with pytest.raises(imagekitio.APIConnectionError):
        client.files.upload(
            file=b"x", file_name="a.txt", use_unique_file_name=False, overwrite_file=False
        )
    assert imagekit_server.files["/a.txt"].data == b"x"
    # The retry a client would make now finds the path taken.
    with pytest.raises(imagekitio.BadRequestError):
        client.files.upload(
            file=b"x", file_name="a.txt", use_unique_file_name=False, overwrite_file=False
        )


def test_drop_delivery(imagekit_server: FakeImageKitServer, web: httpx.Client) -> None:
    imagekit_server.add_file("a.txt", b"a")
    imagekit_server.drop("delivery")
    with pytest.raises(httpx.RemoteProtocolError):
        web.get(imagekit_server.url_endpoint + "/a.txt")
    assert web.get(imagekit_server.url_endpoint + "/a.txt").content == b"a"


def test_stall_makes_the_client_time_out(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    imagekit_server.stall("list", 0.5)
    started = time.monotonic()
    with pytest.raises(imagekitio.APITimeoutError):
        client.with_options(timeout=0.1).assets.list()
    assert time.monotonic() - started < 0.4
    assert client.assets.list() == []  # the next request is not stalled


def test_stall_before_processing_then_processes(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    imagekit_server.stall("upload", 0.2)
    started = time.monotonic()
    client.files.upload(file=b"x", file_name="a.txt", use_unique_file_name=False)
    assert time.monotonic() - started >= 0.2
    assert "/a.txt" in imagekit_server.files


def test_stall_after_processing_stores_before_the_timeout(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    imagekit_server.stall("upload", 5, after_processing=True)
    with pytest.raises(imagekitio.APITimeoutError):
        client.with_options(timeout=0.2).files.upload(
            file=b"x", file_name="a.txt", use_unique_file_name=False
        )
    assert imagekit_server.files["/a.txt"].data == b"x"
    imagekit_server.reset()  # wakes the stalled handler at once


def test_reset_cuts_a_stall_short_without_processing(
    client: ImageKit, imagekit_server: FakeImageKitServer
) -> None:
    imagekit_server.stall("upload", 5)
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            client.files.upload(file=b"x", file_name="a.txt")
        except imagekitio.APIConnectionError as error:
            errors.append(error)

    thread = threading.Thread(target=upload)
    thread.start()
    deadline = time.monotonic() + 2
    while imagekit_server.count("upload") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert imagekit_server.requests[0].status is None  # logged while in flight
    imagekit_server.reset()
    thread.join(2)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert imagekit_server.files == {}


def test_trickle_sends_the_answer_slowly(
    imagekit_server: FakeImageKitServer, web: httpx.Client
) -> None:
    imagekit_server.add_file("slow.bin", b"s" * 400)
    imagekit_server.trickle("delivery", 1000)
    started = time.monotonic()
    with web.stream("GET", imagekit_server.url_endpoint + "/slow.bin") as response:
        chunks = list(response.iter_raw())
    assert time.monotonic() - started >= 0.3
    assert b"".join(chunks) == b"s" * 400
    assert len(chunks) > 1
    imagekit_server.trickle("delivery", 1)
    with pytest.raises(httpx.ReadTimeout):
        web.get(imagekit_server.url_endpoint + "/slow.bin", timeout=0.2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.fail("uploads"), "Unknown route"),
        (lambda s: s.fail("upload", 200), "400-599"),
        (lambda s: s.drop("list", times=0), "at least 1"),
        (lambda s: s.fail("list", skip=-1), "0 or more"),
        (lambda s: s.stall("list", -1), "negative"),
        (lambda s: s.trickle("list", 0), "at least 1"),
    ],
)
def test_fault_arguments_are_checked(
    imagekit_server: FakeImageKitServer, call: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call(imagekit_server)  # type: ignore[operator]


# Set-up helpers and life cycle


def test_add_file(imagekit_server: FakeImageKitServer) -> None:
    stored = imagekit_server.add_file("media/x.png", png(4, 5), is_private=True, tags=("a",))
    assert isinstance(stored, StoredFile)
    assert (stored.file_path, stored.name, stored.folder) == ("/media/x.png", "x.png", "/media/")
    assert (stored.width, stored.height, stored.size) == (4, 5, len(png(4, 5)))
    assert imagekit_server.files == {"/media/x.png": stored}
    with pytest.raises(TypeError):
        imagekit_server.add_file("a", b"", tags="ab")
    with pytest.raises(ValueError, match="folder"):
        imagekit_server.add_file("a/", b"")
    with pytest.raises(ValueError, match="aware"):
        imagekit_server.add_file("a", b"", created_at=datetime(2024, 1, 1))


def test_files_is_a_read_only_snapshot(imagekit_server: FakeImageKitServer) -> None:
    snapshot = imagekit_server.files
    imagekit_server.add_file("a.txt", b"a")
    assert snapshot == {}
    with pytest.raises(TypeError):
        snapshot["/b"] = None  # type: ignore[index]


def test_life_cycle() -> None:
    server = FakeImageKitServer(private_key="sekrit", endpoint_id="ep")
    assert "stopped" in repr(server)
    with server:
        assert server.url_endpoint == f"http://127.0.0.1:{server.port}/ep"
        assert "running" in repr(server)
        assert "sekrit" not in repr(server)
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
        # A request stalled for long does not hold stop() up.
        server.stall("list", 30)
        refused: list[BaseException] = []

        def stalled_request() -> None:
            try:
                raw(server, "GET", "/v1/files", auth=False)
            except http.client.RemoteDisconnected as error:
                refused.append(error)

        thread = threading.Thread(target=stalled_request, daemon=True)
        thread.start()
        while server.count() == 0:
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 2
    thread.join(2)
    assert len(refused) == 1
    server.stop()  # idempotent
    with pytest.raises(ValueError, match="endpoint_id"):
        FakeImageKitServer(endpoint_id="a/b")
    with pytest.raises(ValueError, match="private_key"):
        FakeImageKitServer(private_key="")


def test_keep_alive_connections_do_not_block_stop() -> None:
    with FakeImageKitServer() as server, httpx.Client() as session:
        assert session.get(server.url_endpoint + "/none").status_code == 404
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
    assert urlsplit(server.base_url).port == server.port
