"""A stand-in ImageKit server: the upload, management and delivery APIs on 127.0.0.1.

Standard library only, and independent of the rest of this package on purpose: it is a second
reading of ImageKit's wire contract, so a misreading in the client or the URL signer is not
written twice and cannot make both sides agree on a bug.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.server
import json
import logging
import mimetypes
import re
import secrets
import socket
import string
import struct
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["ROUTES", "FakeImageKitServer", "RecordedRequest", "Route", "StoredFile"]

logger = logging.getLogger("django_imagekit_storage.testing")

#: Route names for ``fail``/``drop``/``stall``/``trickle`` and ``count``.
ROUTES: Final = ("upload", "details", "delete", "bulk_delete", "list", "purge", "delivery")
#: The type of a route name.
Route = Literal["upload", "details", "delete", "bulk_delete", "list", "purge", "delivery"]

HELP: Final = "For support kindly contact us at support@imagekit.io ."
AUTH_MESSAGE: Final = "Your account cannot be authenticated."
NOT_FOUND_MESSAGE: Final = "The requested file does not exist."
EXISTS_MESSAGE: Final = (
    "A file with the same name already exists at the exact location. We could not process "
    "your request because both overwriteFile and useUniqueFileName are set to false."
)
MAX_LIMIT: Final = 1000
# Used by ImageKit when a signed URL carries no ik-t.
NO_EXPIRY: Final = 9999999999
_RESPONSE_FIELDS: Final = frozenset(
    {
        "tags",
        "customCoordinates",
        "isPrivateFile",
        "embeddedMetadata",
        "isPublished",
        "customMetadata",
        "metadata",
        "selectedFieldsSchema",
    }
)
_UNSAFE_NAME_CHARS: Final = re.compile(r"[^A-Za-z0-9._-]")
_UNIQUE_ALPHABET: Final = string.ascii_letters + string.digits
# Deterministic across platforms, unlike the system's mime.types; mimetypes is the fallback.
_MIME_BY_EXTENSION: Final = MappingProxyType(
    {
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "png": "image/png",
        "gif": "image/gif",
        "webp": "image/webp",
        "avif": "image/avif",
        "svg": "image/svg+xml",
        "bmp": "image/bmp",
        "ico": "image/x-icon",
        "txt": "text/plain",
        "css": "text/css",
        "js": "application/javascript",
        "json": "application/json",
        "pdf": "application/pdf",
        "mp4": "video/mp4",
    }
)
_SORTS: Final = MappingProxyType(
    {
        "NAME": "name",
        "CREATED": "created_at",
        "UPDATED": "updated_at",
        "SIZE": "size",
        "HEIGHT": "height",
        "WIDTH": "width",
    }
)


def _now() -> datetime:
    return _to_millisecond(datetime.now(timezone.utc))


def _to_millisecond(moment: datetime) -> datetime:
    # The API reports milliseconds: stored times equal what a client parses back.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _iso(moment: datetime) -> str:
    # ImageKit's form: millisecond precision, "Z".
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _new_id() -> str:
    # ImageKit ids look like MongoDB ObjectIds: 24 hex digits.
    return secrets.token_hex(12)


def _sanitize(segment: str) -> str:
    return _UNSAFE_NAME_CHARS.sub("_", segment)


def _normalize_folder(folder: str) -> str:
    """``"a//b c/"`` -> ``"/a/b_c/"``; the root is ``"/"``."""
    segments = [_sanitize(part) for part in folder.split("/") if part]
    return "/" + "".join(f"{part}/" for part in segments)


def _plain_folder(folder: str) -> str:
    """A folder given in a query: normalised slashes, characters kept as written."""
    segments = [part for part in folder.split("/") if part]
    return "/" + "".join(f"{part}/" for part in segments)


def _parent(path: str) -> str:
    """``"/a/b.jpg"`` -> ``"/a/"``; ``"/a/b/"`` (a folder) -> ``"/a/"``."""
    return path.rstrip("/").rpartition("/")[0] + "/"


def _unique_name(name: str) -> str:
    suffix = "_" + "".join(secrets.choice(_UNIQUE_ALPHABET) for _ in range(9))
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return name + suffix
    return f"{stem}{suffix}.{extension}"


def _image_info(data: bytes) -> tuple[str, int, int] | None:
    """``(mime, width, height)`` sniffed from the first bytes, for the common web formats."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data[:6] in {b"GIF87a", b"GIF89a"} and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "image/gif", width, height
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp_info(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_info(data)
    return None


def _webp_info(data: bytes) -> tuple[str, int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
    elif chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        width, height = width & 0x3FFF, height & 0x3FFF
    else:
        return None
    return "image/webp", width, height


def _jpeg_info(data: bytes) -> tuple[str, int, int] | None:
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker in {0xD8, 0x01} or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        # Start-of-frame markers carry the size; C4, C8 and CC are not frames.
        if 0xC0 <= marker <= 0xCF and marker not in {0xC4, 0xC8, 0xCC}:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return "image/jpeg", width, height
        position += 2 + length
    return None


def _guess_mime(name: str, data: bytes) -> tuple[str, int | None, int | None]:
    info = _image_info(data)
    if info is not None:
        return info
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    mime = _MIME_BY_EXTENSION.get(extension) or mimetypes.guess_type(name)[0]
    return mime or "application/octet-stream", None, None


@dataclass(frozen=True)
class StoredFile:
    """One file in the stand-in media library."""

    file_id: str
    #: With its leading ``"/"``: ``"/media/a_Ab3dE9xQz.jpg"``.
    file_path: str
    name: str
    data: bytes = field(repr=False)
    size: int
    mime: str
    is_private: bool
    tags: tuple[str, ...]
    custom_metadata: Mapping[str, object]
    created_at: datetime
    updated_at: datetime
    width: int | None
    height: int | None
    version: int = 1

    @property
    def folder(self) -> str:
        """The folder holding the file, with slashes on both sides (``"/"`` for the root)."""
        return _parent(self.file_path)

    @property
    def is_image(self) -> bool:
        return self.mime.startswith("image/")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received, as the request log keeps it."""

    method: str
    #: The path without the query string, as sent (percent-encoding kept).
    path: str
    #: One of ``ROUTES``, or ``None`` for a path the server does not know.
    route: str | None
    query: dict[str, list[str]]
    #: The status answered; ``None`` while in flight or when dropped without an answer.
    status: int | None
    #: ``time.time()`` when the request arrived.
    time: float
    #: Request headers, without ``Authorization``.
    headers: dict[str, str] = field(default_factory=dict)
    #: The text fields of an upload's form (the file part is left out).
    form: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    kind: Literal["fail", "drop", "stall", "trickle"]
    remaining: int
    #: Requests let through untouched before the fault applies.
    skip: int = 0
    status: int = 500
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str | None = None
    help: str | None = None
    after_processing: bool = False
    seconds: float = 0.0
    bytes_per_second: int = 0


@dataclass(frozen=True)
class _Folder:
    path: str  # "/a/b/"
    folder_id: str
    created_at: datetime


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class _BadRequestError(Exception):
    """A request the server answers with a 4xx JSON error."""

    def __init__(self, message: str, status: int = 400, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra


class _DropConnectionError(Exception):
    """Close the connection without answering."""


def _json(status: int, payload: object, headers: Mapping[str, str] | None = None) -> _Response:
    return _Response(status, json.dumps(payload).encode(), headers=dict(headers or {}))


def _error(
    status: int,
    message: str,
    help_text: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> _Response:
    return _json(status, {"message": message, "help": help_text or HELP, **(extra or {})}, headers)


def _parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """``'form-data; name="a"; filename="b"'`` -> ``("form-data", {"name": "a", ...})``."""
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for match in re.finditer(r';?\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', ";" + rest):
        key, raw = match.group(1).lower(), match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key] = raw
    return main.strip().lower(), params


@dataclass(frozen=True)
class _Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def _parse_multipart(content_type: str, body: bytes) -> list[_Part]:
    kind, params = _parse_header_params(content_type)
    boundary = params.get("boundary", "")
    if kind != "multipart/form-data" or not boundary:
        raise _BadRequestError("The upload must be sent as multipart/form-data with a boundary.")
    marker = b"--" + boundary.encode("latin-1")
    delimiter = b"\r\n" + marker
    # Offsets rather than split(): a large upload is copied once, into its part.
    if body.startswith(marker):
        position = len(marker)
    else:  # a preamble
        found = body.find(delimiter)
        if found < 0:
            raise _BadRequestError("Malformed multipart body: the opening boundary is missing.")
        position = found + len(delimiter)
    parts: list[_Part] = []
    while not body.startswith(b"--", position):
        header_end = body.find(b"\r\n\r\n", position)
        if not body.startswith(b"\r\n", position) or header_end < 0:
            raise _BadRequestError("Malformed multipart body: a part has no header block.")
        next_delimiter = body.find(delimiter, header_end + 4)
        if next_delimiter < 0:
            raise _BadRequestError("Malformed multipart body: the closing boundary is missing.")
        head = body[position + 2 : header_end]
        if body.find(delimiter, position, header_end) >= 0:
            raise _BadRequestError("Malformed multipart body: a part has no header block.")
        headers: dict[str, str] = {}
        for line in head.split(b"\r\n"):
            key, colon, value = line.decode("utf-8", "replace").partition(":")
            if not colon:
                raise _BadRequestError("Malformed multipart body: a part header has no ':'.")
            headers[key.strip().lower()] = value.strip()
        disposition, disposition_params = _parse_header_params(
            headers.get("content-disposition", "")
        )
        if disposition != "form-data" or "name" not in disposition_params:
            raise _BadRequestError("Malformed multipart body: a part has no form-data name.")
        parts.append(
            _Part(
                name=disposition_params["name"],
                filename=disposition_params.get("filename"),
                content_type=headers.get("content-type"),
                data=body[header_end + 4 : next_delimiter],
            )
        )
        position = next_delimiter + len(delimiter)
    return parts


def _decode_text_file(value: str) -> bytes:
    """The ``file`` field sent as text: a data URI or base64."""
    if value.startswith(("http://", "https://")):
        raise _BadRequestError(
            "The stand-in ImageKit server cannot fetch a file from a URL: send the bytes instead."
        )
    if value.startswith("data:"):
        header, comma, payload = value.partition(",")
        if not comma:
            raise _BadRequestError("Malformed data URI in the file parameter.")
        if header.endswith(";base64"):
            value = payload
        else:
            return unquote(payload).encode("utf-8")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except binascii.Error as error:
        raise _BadRequestError(
            "The file parameter is text but neither base64 nor a data URI."
        ) from error


def _parse_bool(form: Mapping[str, str], name: str, default: bool) -> bool:
    value = form.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered not in {"true", "false"}:
        raise _BadRequestError(f"Invalid value for {name}: expected true or false, got {value!r}.")
    return lowered == "true"


def _parse_list(value: str | None) -> list[str]:
    if not value:
        return []
    if value.lstrip().startswith("["):
        try:
            items = json.loads(value)
        except json.JSONDecodeError as error:
            raise _BadRequestError(f"Invalid JSON array: {value!r}.") from error
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise _BadRequestError(f"Expected an array of strings, got {value!r}.")
        return [item.strip() for item in items if item.strip()]
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class _Clause:
    field: Literal["name", "path", "type"]
    operator: Literal["=", ":"]
    value: str


_CLAUSE: Final = re.compile(
    r"""\s*(?P<field>[A-Za-z_]+)\s*(?P<op>=|:)\s*(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*"""
)


def _parse_search(query: str) -> list[_Clause]:
    """The supported subset of ImageKit's search language: name/path/type, ``=``/``:``, ``AND``."""
    clauses: list[_Clause] = []
    position = 0
    while True:
        match = _CLAUSE.match(query, position)
        if match is None:
            raise _BadRequestError(
                f"Invalid searchQuery {query!r}: the stand-in ImageKit server understands "
                'clauses like name = "a.jpg", name : "a", path = "/dir/", path : "/dir/", '
                'type = "folder", joined by AND.'
            )
        name = match.group("field").lower()
        if name not in {"name", "path", "type"}:
            raise _BadRequestError(
                f"Invalid searchQuery {query!r}: the stand-in ImageKit server supports only the "
                f"name, path and type fields, not {match.group('field')!r}."
            )
        value = re.sub(r"\\(.)", r"\1", match.group("value")[1:-1])
        if name == "type" and value not in {"file", "file-version", "folder", "all"}:
            raise _BadRequestError(
                f"Invalid searchQuery {query!r}: type is file, file-version, folder or all."
            )
        clauses.append(_Clause(name, match.group("op"), value))  # type: ignore[arg-type]
        position = match.end()
        if position == len(query):
            return clauses
        joiner = re.compile(r"AND\s", re.IGNORECASE).match(query, position)
        if joiner is None:
            raise _BadRequestError(
                f"Invalid searchQuery {query!r} at position {position}: clauses must be "
                "joined by AND (OR and parentheses are not supported by the stand-in server)."
            )
        position = joiner.end()


def _int_param(query: Mapping[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values or values[-1] == "":
        return default
    try:
        return int(values[-1])
    except ValueError as error:
        raise _BadRequestError(
            f"Invalid {name}: expected an integer, got {values[-1]!r}."
        ) from error


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeImageKit/1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, every answer on a
    # kept-alive connection waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    # Idle keep-alive connections end eventually even if a client never closes them.
    timeout = 30
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # What http.server answers itself (an unknown method, a header too long) is ImageKit's
        # error JSON too, not an HTML page.
        self.log_error("code %d, message %s", code, message)
        short = self.responses.get(code, ("Error", ""))[0]
        body = json.dumps({"message": message or short, "help": HELP}).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.close_connection = True
        no_body = code < 200 or code in {204, 205, 304}
        if not no_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and not no_body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.owner._dispatch(self)

    def do_POST(self) -> None:
        self.server.owner._dispatch(self)

    def do_DELETE(self) -> None:
        self.server.owner._dispatch(self)

    def do_PUT(self) -> None:
        self.server.owner._dispatch(self)

    def do_PATCH(self) -> None:
        self.server.owner._dispatch(self)

    def do_HEAD(self) -> None:
        self.server.owner._dispatch(self)

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            raise _BadRequestError(f"Invalid Content-Length {raw_length!r}.")
        data = self.rfile.read(length)
        if len(data) != length:
            raise _DropConnectionError("the client sent a shorter body than its Content-Length")
        return data

    def _read_chunked(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise _DropConnectionError("the client closed the connection inside a chunked body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as error:
                raise _BadRequestError("Malformed chunked body: bad chunk size line.") from error
            if size == 0:
                # Trailers, up to the empty line.
                while self.rfile.readline(1024) not in {b"\r\n", b"\n", b""}:
                    pass
                return b"".join(pieces)
            piece = self.rfile.read(size)
            if len(piece) != size or self.rfile.readline(1024) not in {b"\r\n", b"\n"}:
                raise _BadRequestError("Malformed chunked body: a chunk is shorter than announced.")
            pieces.append(piece)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # stop() wakes every handler first, then waits for them.
    block_on_close = True
    owner: FakeImageKitServer

    def __init__(self, address: tuple[str, int], owner: FakeImageKitServer) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            # Already closed by the client: nothing left to wake.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver calls this inside its except block.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            # A client that went away (its timeout, a closed pool) is normal here.
            logger.debug("connection from %s ended: %r", client_address, error)
        else:
            logger.error(
                "The stand-in ImageKit server failed on a request from %s; the connection was "
                "closed without an answer.",
                client_address,
                exc_info=True,  # noqa: LOG014
            )


class FakeImageKitServer:
    """A running stand-in for ImageKit: the upload, management and delivery APIs.

    Use it as a context manager or with ``start()``/``stop()``. Point the SDK at
    ``base_url`` and build delivery URLs on ``url_endpoint``. Thread-safe.
    """

    def __init__(
        self,
        *,
        private_key: str = "private_test_key",
        endpoint_id: str = "demo",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not private_key:
            raise ValueError("private_key must not be empty.")
        if not endpoint_id or "/" in endpoint_id:
            raise ValueError("endpoint_id must be one non-empty path segment, e.g. 'demo'.")
        self.private_key = private_key
        self.endpoint_id = endpoint_id
        self.host = host
        self.port = port
        self._lock = threading.RLock()
        self._files: dict[str, StoredFile] = {}
        self._paths_by_id: dict[str, str] = {}
        self._folders: dict[str, _Folder] = {}
        self._requests: list[RecordedRequest] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._purges: list[str] = []
        # Bumped by reset()/stop(): a stalled handler from before must not touch the new state.
        self._generation = 0
        self._wake = threading.Condition(self._lock)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "running" if self._httpd is not None else "stopped"
        where = self.base_url if self._httpd is not None else f"{self.host}:{self.port}"
        return f"<FakeImageKitServer {state} {where}>"

    # Life cycle

    def start(self) -> FakeImageKitServer:
        if self._httpd is not None:
            raise RuntimeError("The stand-in ImageKit server is already running.")
        httpd = _HTTPServer((self.host, self.port), self)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeImageKitServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        with self._lock:
            self._generation += 1
            self._wake.notify_all()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Where the SDK's ``base_url`` points: uploads and the management API."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url_endpoint(self) -> str:
        """The delivery base: ``url_endpoint + filePath`` serves a file."""
        return f"{self.base_url}/{self.endpoint_id}"

    # Inspection and set-up

    @property
    def files(self) -> Mapping[str, StoredFile]:
        """A snapshot of the stored files, keyed by ``filePath`` (leading ``"/"``)."""
        with self._lock:
            return MappingProxyType(dict(self._files))

    @property
    def folders(self) -> list[str]:
        """A snapshot of the folders, as ``"/a/b/"``. Like ImageKit, folders outlive their files."""
        with self._lock:
            return sorted(self._folders)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def purges(self) -> list[str]:
        """The URLs sent to the purge API, oldest first."""
        with self._lock:
            return list(self._purges)

    def count(self, route: Route | None = None, method: str | None = None) -> int:
        """How many requests arrived (for ``route`` and/or ``method``, if given)."""
        if route is not None and route not in ROUTES:
            raise ValueError(f"Unknown route {route!r}: choose one of {', '.join(ROUTES)}.")
        with self._lock:
            return sum(
                1
                for request in self._requests
                if (route is None or request.route == route)
                and (method is None or request.method == method.upper())
            )

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Forget files, folders, requests, purges and pending faults."""
        with self._lock:
            self._files.clear()
            self._paths_by_id.clear()
            self._folders.clear()
            self._requests.clear()
            self._faults.clear()
            self._purges.clear()
            self._generation += 1
            self._wake.notify_all()

    def add_file(
        self,
        path: str,
        data: bytes,
        *,
        is_private: bool = False,
        tags: Sequence[str] = (),
        custom_metadata: Mapping[str, object] | None = None,
        created_at: datetime | None = None,
    ) -> StoredFile:
        """Store a file directly (no request, no renaming), replacing one at the same path."""
        if isinstance(tags, str):
            raise TypeError("tags must be a sequence of strings, not one string.")
        file_path = "/" + path.lstrip("/")
        if file_path.endswith("/"):
            raise ValueError(f"{path!r} names a folder, not a file.")
        created = created_at or _now()
        if created.tzinfo is None:
            raise ValueError("created_at must be an aware datetime.")
        with self._lock:
            return self._store(
                file_path,
                bytes(data),
                is_private=is_private,
                tags=tuple(tags),
                custom_metadata=dict(custom_metadata or {}),
                now=_to_millisecond(created.astimezone(timezone.utc)),
            )

    # Fault injection

    def _add_fault(self, route: str, fault: _Fault) -> None:
        if route not in ROUTES:
            raise ValueError(f"Unknown route {route!r}: choose one of {', '.join(ROUTES)}.")
        if fault.remaining < 1:
            raise ValueError("times must be at least 1.")
        if fault.skip < 0:
            raise ValueError(f"skip must be 0 or more, not {fault.skip}.")
        with self._lock:
            self._faults.setdefault(route, []).append(fault)

    def fail(
        self,
        route: Route,
        status: int = 500,
        *,
        times: int = 1,
        skip: int = 0,
        headers: Mapping[str, str] | None = None,
        message: str | None = None,
        help: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``route`` with ``status`` and ImageKit's error
        JSON (``message``/``help``), plus ``headers`` (e.g. ``{"Retry-After": "0"}``).
        Nothing is processed. With ``skip``, that many requests go through normally first
        (e.g. ``skip=1``: the second upload fails)."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), not {status}.")
        self._add_fault(
            route,
            _Fault(
                "fail",
                times,
                skip=skip,
                status=status,
                headers=dict(headers or {}),
                message=message,
                help=help,
            ),
        )

    def drop(
        self, route: Route, *, times: int = 1, skip: int = 0, after_processing: bool = False
    ) -> None:
        """Close the connection of the next ``times`` requests to ``route`` without answering
        (after letting ``skip`` requests through).

        With ``after_processing`` the request takes effect first (an upload is stored, a file
        deleted): the answer is lost, as when a connection breaks on its way back."""
        self._add_fault(route, _Fault("drop", times, skip=skip, after_processing=after_processing))

    def stall(
        self,
        route: Route,
        seconds: float,
        *,
        times: int = 1,
        skip: int = 0,
        after_processing: bool = False,
    ) -> None:
        """Wait ``seconds`` before handling the next ``times`` requests to ``route``, after
        letting ``skip`` through (with ``after_processing``: handle them, then wait before
        answering).

        ``reset()`` and ``stop()`` cut the wait short; a request whose wait was cut short before
        processing is dropped unprocessed."""
        if seconds < 0:
            raise ValueError("seconds must not be negative.")
        self._add_fault(
            route,
            _Fault("stall", times, skip=skip, seconds=seconds, after_processing=after_processing),
        )

    def trickle(
        self, route: Route, bytes_per_second: int, *, times: int = 1, skip: int = 0
    ) -> None:
        """Send the answers of the next ``times`` requests to ``route`` at ``bytes_per_second``
        (after letting ``skip`` through at full speed)."""
        if bytes_per_second < 1:
            raise ValueError("bytes_per_second must be at least 1.")
        self._add_fault(
            route, _Fault("trickle", times, skip=skip, bytes_per_second=bytes_per_second)
        )

    def _take_fault(self, route: str | None) -> _Fault | None:
        if route is None:
            return None
        with self._lock:
            queue = self._faults.get(route)
            if not queue:
                return None
            fault = queue[0]
            if fault.skip > 0:
                fault.skip -= 1
                return None
            fault.remaining -= 1
            if fault.remaining == 0:
                queue.pop(0)
            return fault

    def _wait(self, seconds: float, generation: int) -> bool:
        """Sleep up to ``seconds``; False if ``reset()``/``stop()`` happened meanwhile."""
        deadline = time.monotonic() + seconds
        with self._lock:
            while self._generation == generation:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self._wake.wait(left)
            return False

    # Request handling

    def _route(self, method: str, path: str) -> tuple[str | None, str]:
        """``(route, argument)`` for a request path (without the query)."""
        if method == "POST" and path == "/api/v1/files/upload":
            return "upload", ""
        if method == "GET" and path in {"/v1/files", "/v1/files/"}:
            return "list", ""
        if method == "POST" and path == "/v1/files/batch/deleteByFileIds":
            return "bulk_delete", ""
        if method == "POST" and path == "/v1/files/purge":
            return "purge", ""
        match = re.fullmatch(r"/v1/files/purge/([^/]+)", path)
        if method == "GET" and match:
            return "purge", match.group(1)
        match = re.fullmatch(r"/v1/files/([^/]+)/details", path)
        if method == "GET" and match:
            return "details", unquote(match.group(1))
        match = re.fullmatch(r"/v1/files/([^/]+)", path)
        if method == "DELETE" and match:
            return "delete", unquote(match.group(1))
        if path.startswith(f"/{self.endpoint_id}/") and method in {"GET", "HEAD"}:
            return "delivery", path[len(self.endpoint_id) + 2 :]
        return None, ""

    def _dispatch(self, handler: _Handler) -> None:
        arrived = time.time()
        method = handler.command
        target = urlsplit(handler.path)
        route, argument = self._route(method, target.path)
        query = parse_qs(target.query, keep_blank_values=True)
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "authorization"}
        form: dict[str, str] = {}
        status: int | None = None
        # Logged on arrival (status None until answered), so in-flight requests count.
        logged = RecordedRequest(method, target.path, route, query, None, arrived, headers, form)
        with self._lock:
            generation = self._generation
            self._requests.append(logged)

        def answer(response: _Response, rate: int | None = None) -> None:
            # Logged before the first byte goes out: a client that has its answer sees it.
            nonlocal status, logged
            status = response.status
            logged = self._log(logged, replace(logged, status=status))
            self._send(handler, response, rate)

        try:
            try:
                body = handler.read_body()
            except _BadRequestError as error:
                handler.close_connection = True
                answer(_error(error.status, error.message))
                return
            fault = self._take_fault(route)
            if fault is not None and fault.kind == "fail":
                response = _error(
                    fault.status, fault.message or _default_message(fault.status), fault.help
                )
                response.headers.update(fault.headers)
                answer(response)
                return
            if fault is not None and not fault.after_processing:
                if fault.kind == "drop":
                    raise _DropConnectionError("fault injected")
                if fault.kind == "stall" and not self._wait(fault.seconds, generation):
                    raise _DropConnectionError("reset or stopped while stalled")
            if route is None:
                response = _error(404, f"No ImageKit API route for {method} {target.path}.")
            else:
                response = self._process(
                    route, argument, handler, target.query, query, body, form, generation
                )
            if fault is not None and fault.after_processing:
                if fault.kind == "drop":
                    raise _DropConnectionError("fault injected after processing")
                if fault.kind == "stall" and not self._wait(fault.seconds, generation):
                    raise _DropConnectionError("reset or stopped while stalled")
            rate = fault.bytes_per_second if fault is not None and fault.kind == "trickle" else None
            answer(response, rate)
        except _DropConnectionError as reason:
            logger.debug("dropping %s %s: %s", method, target.path, reason)
            handler.close_connection = True
            if status is not None:  # dropped while trickling: no complete answer
                self._log(logged, replace(logged, status=None))

    def _log(self, old: RecordedRequest, new: RecordedRequest) -> RecordedRequest:
        """Replace a log entry (unless the log was cleared meanwhile); returns ``new``."""
        with self._lock:
            for index in range(len(self._requests) - 1, -1, -1):
                if self._requests[index] is old:
                    self._requests[index] = new
                    break
        return new

    def _send(self, handler: _Handler, response: _Response, rate: int | None) -> None:
        handler.send_response(response.status)
        if response.content_type is not None:
            handler.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            handler.send_header(name, value)
        if response.status != 204 and response.status >= 200:
            handler.send_header("Content-Length", str(len(response.body)))
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command != "HEAD" and response.status != 204:
            if rate is None:
                handler.wfile.write(response.body)
            else:
                self._write_slowly(handler, response.body, rate)
        handler.wfile.flush()

    def _write_slowly(self, handler: _Handler, body: bytes, rate: int) -> None:
        # Ten writes a second (fewer for tiny rates), each flushed.
        step = max(1, rate // 10)
        with self._lock:
            generation = self._generation
        for start in range(0, len(body), step):
            handler.wfile.write(body[start : start + step])
            handler.wfile.flush()
            if not self._wait(step / rate, generation):
                raise _DropConnectionError("reset or stopped while trickling")

    def _authenticated(self, handler: _Handler) -> bool:
        kind, _, encoded = handler.headers.get("Authorization", "").partition(" ")
        if kind.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username = decoded.partition(":")[0]
        return hmac.compare_digest(username.encode(), self.private_key.encode())

    def _process(
        self,
        route: str,
        argument: str,
        handler: _Handler,
        raw_query: str,
        query: dict[str, list[str]],
        body: bytes,
        form: dict[str, str],
        generation: int,
    ) -> _Response:
        try:
            if route == "delivery":
                return self._deliver(argument, raw_query, query)
            if not self._authenticated(handler):
                return _error(403, AUTH_MESSAGE)
            with self._lock:
                if self._generation != generation:
                    raise _DropConnectionError("reset while the request was in flight")
            if route == "upload":
                return self._upload(handler.headers.get("Content-Type", ""), body, form)
            if route == "details":
                return self._details(argument)
            if route == "delete":
                return self._delete(argument)
            if route == "bulk_delete":
                return self._bulk_delete(body)
            if route == "list":
                return self._list(query)
            return self._purge(argument, body)
        except _BadRequestError as error:
            return _error(error.status, error.message, extra=error.extra)

    # The API

    def _store(
        self,
        file_path: str,
        data: bytes,
        *,
        is_private: bool,
        tags: tuple[str, ...],
        custom_metadata: dict[str, object],
        now: datetime,
    ) -> StoredFile:
        """Create or overwrite (same id, next version) a file. Call with the lock held."""
        name = file_path.rpartition("/")[2]
        mime, width, height = _guess_mime(name, data)
        existing = self._files.get(file_path)
        stored = StoredFile(
            file_id=existing.file_id if existing else _new_id(),
            file_path=file_path,
            name=name,
            data=data,
            size=len(data),
            mime=mime,
            is_private=is_private,
            tags=tags,
            custom_metadata=MappingProxyType(custom_metadata),
            created_at=existing.created_at if existing else now,
            updated_at=now,
            width=width,
            height=height,
            version=existing.version + 1 if existing else 1,
        )
        self._files[file_path] = stored
        self._paths_by_id[stored.file_id] = file_path
        folder = stored.folder
        while folder != "/" and folder not in self._folders:
            self._folders[folder] = _Folder(folder, _new_id(), now)
            folder = _parent(folder)
        return stored

    def _upload(self, content_type: str, body: bytes, form: dict[str, str]) -> _Response:
        parts = _parse_multipart(content_type, body)
        file_part: _Part | None = None
        for part in parts:
            if part.name == "file":
                file_part = part
            else:
                form[part.name] = part.data.decode("utf-8", "replace")
        if file_part is None:
            raise _BadRequestError("Missing file parameter for upload")
        if file_part.filename is None:
            data = _decode_text_file(file_part.data.decode("utf-8", "replace").strip())
        else:
            data = file_part.data
        raw_name = form.get("fileName", "")
        if not raw_name:
            raise _BadRequestError("Missing fileName parameter for upload")
        unique = _parse_bool(form, "useUniqueFileName", default=True)
        overwrite = _parse_bool(form, "overwriteFile", default=True)
        is_private = _parse_bool(form, "isPrivateFile", default=False)
        tags = tuple(_parse_list(form.get("tags")))
        metadata: dict[str, object] = {}
        if form.get("customMetadata"):
            try:
                loaded = json.loads(form["customMetadata"])
            except json.JSONDecodeError as error:
                raise _BadRequestError("Invalid customMetadata: expected a JSON object.") from error
            if not isinstance(loaded, dict):
                raise _BadRequestError("Invalid customMetadata: expected a JSON object.")
            metadata = loaded
        response_fields = _parse_list(form.get("responseFields"))
        unknown = sorted(set(response_fields) - _RESPONSE_FIELDS)
        if unknown:
            raise _BadRequestError(f"Invalid responseFields: {', '.join(unknown)}.")
        folder = _normalize_folder(form.get("folder", "/"))
        name = _sanitize(raw_name)
        with self._lock:
            file_path = folder + name
            if unique:
                file_path = folder + _unique_name(name)
                while file_path in self._files:
                    file_path = folder + _unique_name(name)
            elif file_path in self._files and not overwrite:
                raise _BadRequestError(EXISTS_MESSAGE)
            stored = self._store(
                file_path,
                data,
                is_private=is_private,
                tags=tags,
                custom_metadata=metadata,
                now=_now(),
            )
        payload: dict[str, object] = {
            "fileId": stored.file_id,
            "name": stored.name,
            "size": stored.size,
            "versionInfo": {"id": stored.file_id, "name": f"Version {stored.version}"},
            "filePath": stored.file_path,
            "url": self.url_endpoint + stored.file_path,
            "fileType": "image" if stored.is_image else "non-image",
            "height": stored.height,
            "width": stored.width,
            "thumbnailUrl": self._thumbnail(stored),
            "AITags": None,
        }
        optional: dict[str, object] = {
            "tags": list(stored.tags) or None,
            "isPrivateFile": stored.is_private,
            "customMetadata": dict(stored.custom_metadata),
            "customCoordinates": None,
            "isPublished": True,
            "embeddedMetadata": {},
            "metadata": self._metadata(stored),
            "selectedFieldsSchema": {},
        }
        payload.update({key: optional[key] for key in response_fields})
        return _json(200, payload)

    def _thumbnail(self, stored: StoredFile) -> str | None:
        if not stored.is_image:
            return None
        return f"{self.url_endpoint}/tr:n-ik_ml_thumbnail{stored.file_path}"

    @staticmethod
    def _metadata(stored: StoredFile) -> dict[str, object]:
        return {
            "height": stored.height,
            "width": stored.width,
            "size": stored.size,
            "format": stored.name.rpartition(".")[2].lower() if "." in stored.name else "",
            "hasColorProfile": False,
            "quality": 0,
            "density": 72,
            "hasTransparency": False,
            "exif": {},
        }

    def _file_json(self, stored: StoredFile) -> dict[str, object]:
        return {
            "type": "file",
            "name": stored.name,
            "createdAt": _iso(stored.created_at),
            "updatedAt": _iso(stored.updated_at),
            "fileId": stored.file_id,
            "tags": list(stored.tags) or None,
            "AITags": None,
            "versionInfo": {"id": stored.file_id, "name": f"Version {stored.version}"},
            "embeddedMetadata": {},
            "customCoordinates": None,
            "customMetadata": dict(stored.custom_metadata),
            "isPrivateFile": stored.is_private,
            "isPublished": True,
            "url": self.url_endpoint + stored.file_path,
            "thumbnail": self._thumbnail(stored),
            "fileType": "image" if stored.is_image else "non-image",
            "filePath": stored.file_path,
            "height": stored.height,
            "width": stored.width,
            "size": stored.size,
            "hasAlpha": False,
            "mime": stored.mime,
        }

    @staticmethod
    def _folder_json(folder: _Folder) -> dict[str, object]:
        return {
            "type": "folder",
            "name": folder.path.rstrip("/").rpartition("/")[2],
            "folderPath": folder.path.rstrip("/"),
            "folderId": folder.folder_id,
            "createdAt": _iso(folder.created_at),
            "updatedAt": _iso(folder.created_at),
            "customMetadata": {},
        }

    def _details(self, file_id: str) -> _Response:
        with self._lock:
            path = self._paths_by_id.get(file_id)
            stored = self._files.get(path) if path is not None else None
        if stored is None:
            return _error(404, NOT_FOUND_MESSAGE)
        return _json(200, self._file_json(stored))

    def _delete(self, file_id: str) -> _Response:
        with self._lock:
            path = self._paths_by_id.pop(file_id, None)
            if path is None:
                return _error(404, NOT_FOUND_MESSAGE)
            del self._files[path]
        return _Response(204, content_type=None)

    def _bulk_delete(self, body: bytes) -> _Response:
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError as error:
            raise _BadRequestError('The request body must be JSON: {"fileIds": [...]}.') from error
        file_ids = payload.get("fileIds") if isinstance(payload, dict) else None
        if (
            not isinstance(file_ids, list)
            or not file_ids
            or not all(isinstance(item, str) for item in file_ids)
        ):
            raise _BadRequestError("fileIds must be a non-empty array of strings.")
        with self._lock:
            missing = [item for item in file_ids if item not in self._paths_by_id]
            if missing:
                # Like ImageKit: all or nothing.
                return _error(
                    404, "The requested file(s) does not exist.", extra={"missingFileIds": missing}
                )
            for file_id in file_ids:
                path = self._paths_by_id.pop(file_id, None)
                if path is not None:
                    del self._files[path]
        return _json(200, {"successfullyDeletedFileIds": list(dict.fromkeys(file_ids))})

    def _purge(self, request_id: str, body: bytes) -> _Response:
        if request_id:
            return _json(200, {"status": "Completed"})
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError as error:
            raise _BadRequestError('The request body must be JSON: {"url": ...}.') from error
        url = payload.get("url") if isinstance(payload, dict) else None
        if not isinstance(url, str) or not url:
            raise _BadRequestError("Missing url parameter for purge.")
        with self._lock:
            self._purges.append(url)
        return _json(201, {"requestId": _new_id()})

    def _list(self, query: Mapping[str, list[str]]) -> _Response:
        skip = _int_param(query, "skip", 0)
        limit = _int_param(query, "limit", MAX_LIMIT)
        if skip < 0:
            raise _BadRequestError(f"skip must be 0 or more, not {skip}.")
        if not 1 <= limit <= MAX_LIMIT:
            raise _BadRequestError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}.")
        path = query.get("path", [""])[-1]
        folder = _plain_folder(path) if path else None
        search = query.get("searchQuery", [""])[-1]
        clauses = _parse_search(search) if search.strip() else []
        # As ImageKit documents: with searchQuery, the type parameter has no effect.
        kind = "all" if search.strip() else (query.get("type", ["all"])[-1] or "all")
        if kind not in {"file", "file-version", "folder", "all"}:
            raise _BadRequestError(f"type must be file, file-version, folder or all, not {kind!r}.")
        file_type = query.get("fileType", ["all"])[-1] or "all"
        if file_type not in {"all", "image", "non-image"}:
            raise _BadRequestError(f"fileType must be all, image or non-image, not {file_type!r}.")
        sort = query.get("sort", ["ASC_CREATED"])[-1] or "ASC_CREATED"
        direction, _, key = sort.partition("_")
        if direction not in {"ASC", "DESC"} or key not in _SORTS:
            raise _BadRequestError(f"Unsupported sort {sort!r} in the stand-in ImageKit server.")
        with self._lock:
            files = list(self._files.values())
            folders = list(self._folders.values())
        items: list[tuple[str, str, str, Any, _Folder | StoredFile]] = []
        if kind in {"all", "folder"}:
            for entry in folders:
                name = entry.path.rstrip("/").rpartition("/")[2]
                value = (
                    name
                    if key == "NAME"
                    else entry.created_at
                    if key in {"CREATED", "UPDATED"}
                    else 0
                )
                items.append(("folder", name, entry.path, value, entry))
        if kind in {"all", "file"}:
            for stored in files:
                if file_type == "image" and not stored.is_image:
                    continue
                if file_type == "non-image" and stored.is_image:
                    continue
                attribute = getattr(stored, _SORTS[key])
                items.append(("file", stored.name, stored.file_path, attribute or 0, stored))
        selected = [
            item
            for item in items
            if (folder is None or _parent(item[2]) == folder)
            and all(_matches(clause, item[0], item[1], item[2]) for clause in clauses)
        ]
        selected.sort(key=lambda item: (item[3], item[2]), reverse=direction == "DESC")
        # JSON for the page only: listing a large library page by page stays cheap.
        page = [item[4] for item in selected[skip : skip + limit]]
        return _json(
            200,
            [
                self._folder_json(entry) if isinstance(entry, _Folder) else self._file_json(entry)
                for entry in page
            ],
        )

    # Delivery

    def _deliver(self, raw_path: str, raw_query: str, query: Mapping[str, list[str]]) -> _Response:
        # Transformations are ignored: "tr:..." path segments and the tr query parameter.
        segments = [part for part in raw_path.split("/") if not part.startswith("tr:")]
        file_path = "/" + unquote("/".join(segments))
        with self._lock:
            stored = self._files.get(file_path)
        signature = query.get("ik-s", [None])[-1]
        if stored is None:
            return _error(404, "The requested resource does not exist.")
        if stored.is_private or signature is not None:
            problem = self._signature_problem(raw_path, raw_query, query)
            if problem is not None:
                return _error(401, problem)
        return _Response(
            200,
            stored.data,
            content_type=stored.mime,
            headers={
                "Cache-Control": "private, no-store"
                if stored.is_private
                else "public, max-age=31536000",
                "ETag": f'"{hashlib.md5(stored.data, usedforsecurity=False).hexdigest()}"',
                "Last-Modified": stored.updated_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
            },
        )

    def _signature_problem(
        self, raw_path: str, raw_query: str, query: Mapping[str, list[str]]
    ) -> str | None:
        """Why a signed URL is not acceptable, or None. ImageKit signs HMAC-SHA1 over the URL
        after ``url_endpoint/`` (query included, ik-t/ik-s removed) followed by the expiry."""
        signatures = query.get("ik-s", [])
        if len(signatures) != 1 or not signatures[0]:
            return "This file is private: its URL must be signed (ik-s)."
        expiries = query.get("ik-t", [])
        if len(expiries) > 1:
            return "The signed URL has more than one ik-t parameter."
        expiry = expiries[0] if expiries else str(NO_EXPIRY)
        if not expiry.isdigit():
            return "The signed URL has an invalid ik-t parameter."
        if int(expiry) < time.time():
            return "The signed URL has expired."
        kept = [
            pair
            for pair in raw_query.split("&")
            if pair and pair.split("=", 1)[0] not in {"ik-s", "ik-t"}
        ]
        signed = raw_path + ("?" + "&".join(kept) if kept else "") + expiry
        expected = hmac.new(self.private_key.encode(), signed.encode(), hashlib.sha1).hexdigest()
        if not hmac.compare_digest(expected, signatures[0].lower()):
            return "The signature of the URL is invalid."
        return None


def _matches(clause: _Clause, kind: str, name: str, path: str) -> bool:
    if clause.field == "type":
        wanted = clause.value.lower()
        return wanted == "all" or wanted == kind
    if clause.field == "name":
        return name == clause.value if clause.operator == "=" else name.startswith(clause.value)
    parent = _parent(path)
    wanted_folder = _plain_folder(clause.value)
    if clause.operator == "=":
        return parent == wanted_folder
    return parent.startswith(wanted_folder)


def _default_message(status: int) -> str:
    return {
        400: "Bad request.",
        401: "Unauthorized.",
        403: AUTH_MESSAGE,
        404: NOT_FOUND_MESSAGE,
        408: "Request timeout.",
        409: "Conflict.",
        429: "Too many requests. Please retry after some time.",
        500: "Internal server error.",
        502: "Bad gateway.",
        503: "Service unavailable.",
        504: "Gateway timeout.",
    }.get(status, f"Injected error {status}.")
