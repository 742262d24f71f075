"""Issue 8's properties proven through ImageKitStorage (not only the client): the real SDK
over real HTTP to the stand-in server, whose fault injection plays the flaky network.

tests/test_client.py proves the retry policy itself; here every storage method that talks
to ImageKit is driven through each fault, in each naming mode where names matter.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import ContentFile, File

from django_imagekit_storage.client import ImageKitClient
from django_imagekit_storage.exceptions import (
    ImageKitAuthenticationError,
    ImageKitConnectionError,
    ImageKitStorageError,
    ImageKitTimeoutError,
)
from django_imagekit_storage.storage import ImageKitStorage
from django_imagekit_storage.testing import FakeImageKitServer

MakeStorage = Callable[..., ImageKitStorage]

MODES: dict[str, dict[str, Any]] = {
    "default": {},
    "overwrite": {"file_overwrite": True},
    "exact": {"use_unique_file_name": False},
}
THERE = b"there bytes"


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # The policy is unchanged; only the waits shrink, to keep the suite quick.
    monkeypatch.setattr(ImageKitClient, "backoff_initial", 0.001)


@pytest.fixture
def server(imagekit_server: FakeImageKitServer) -> FakeImageKitServer:
    return imagekit_server


@pytest.fixture
def make_storage(imagekit_storage_factory: Callable[..., Any]) -> MakeStorage:
    def make(**options: Any) -> ImageKitStorage:
        options.setdefault("location", "media")
        storage = imagekit_storage_factory(**options)
        assert isinstance(storage, ImageKitStorage)
        return storage

    return make


# Each storage operation that talks to ImageKit, the route whose faults it meets, and a
# check of its outcome. The file "there.txt" exists and is not in the storage's cache, so
# every operation makes its requests.
def _save(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    name = storage.save("new.txt", ContentFile(b"fresh"))
    assert server.files[f"/media/{name}"].data == b"fresh"
    assert sorted(server.files) == sorted(["/media/there.txt", f"/media/{name}"])


def _exists(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    assert storage.exists("there.txt")


def _size(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    assert storage.size("there.txt") == len(THERE)


def _delete(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    storage.delete("there.txt")
    assert "/media/there.txt" not in server.files


def _open_read(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    with storage.open("there.txt") as handle:
        assert handle.read() == THERE


Check = Callable[[ImageKitStorage, FakeImageKitServer], None]
# (storage call, route faulted, the client operation it is, the name in errors)
OPERATIONS: dict[str, tuple[Check, str, str, str]] = {
    "save": (_save, "upload", "upload", "media/new_*.txt"),
    "exists": (_exists, "list", "search", "media/there.txt"),
    "size": (_size, "list", "search", "media/there.txt"),
    "delete:search": (_delete, "list", "search", "media/there.txt"),
    "delete": (_delete, "delete", "delete", "media/there.txt"),
    "open": (_open_read, "list", "search", "media/there.txt"),
    "open().read()": (_open_read, "delivery", "download", "media/there.txt"),
}

TRANSIENT = {
    "429": lambda s, r: s.fail(r, 429, times=2, headers={"Retry-After": "0"}),
    "500": lambda s, r: s.fail(r, 500, times=2),
    "502": lambda s, r: s.fail(r, 502, times=2),
    "503": lambda s, r: s.fail(r, 503, times=2),
    "504": lambda s, r: s.fail(r, 504, times=2),
    "drop": lambda s, r: s.drop(r, times=2),
    "drop-after-processing": lambda s, r: s.drop(r, times=2, after_processing=True),
}


def _matches(name: str | None, pattern: str) -> bool:
    if name is None:
        return False
    if "*" not in pattern:
        return name == pattern
    head, tail = pattern.split("*")
    return name.startswith(head) and name.endswith(tail)


# --- transient faults are survived ------------------------------------------------------


@pytest.mark.parametrize("fault", list(TRANSIENT))
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_two_transient_faults_are_survived_by_every_storage_operation(
    make_storage: MakeStorage, server: FakeImageKitServer, operation: str, fault: str
) -> None:
    check, route, _, _ = OPERATIONS[operation]
    storage = make_storage(max_retries=2)
    server.add_file("/media/there.txt", THERE)
    TRANSIENT[fault](server, route)
    check(storage, server)
    # Two failed attempts, then one that succeeds.
    assert server.count(route) == 3
    # No operation uses the details route: there is nothing to fault there.
    assert server.count("details") == 0
