from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from django_imagekit_storage.storage import ImageKitStorage
    from django_imagekit_storage.testing import FakeImageKitServer

    MakeStorage = Callable[..., ImageKitStorage]

# Variables that would point the SDK or the storage at a developer's real account.
_ACCOUNT_ENV_PREFIXES = ("IMAGEKIT_", "IMAGE_KIT_", "OPTIONAL_IMAGEKIT_")


def pytest_configure(config: pytest.Config) -> None:
    # tox passes none of these; this guards plain `pytest` runs too.
    for name in list(os.environ):
        if name.startswith(_ACCOUNT_ENV_PREFIXES):
            del os.environ[name]


# --- shared by the modules that drive the storage against the stand-in server ----------------


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry policy unchanged, its waits shrunk (tests/test_client.py times the policy)."""
    # Imported here: some tests check in this process that the SDK is imported lazily.
    from django_imagekit_storage.client import ImageKitClient

    monkeypatch.setattr(ImageKitClient, "backoff_initial", 0.001)


@pytest.fixture
def server(imagekit_server: FakeImageKitServer) -> FakeImageKitServer:
    return imagekit_server


@pytest.fixture
def make_storage(imagekit_storage_factory: Callable[..., Any]) -> MakeStorage:
    """Storages pointed at the stand-in server with more options; closed afterwards."""
    from django_imagekit_storage.storage import ImageKitStorage

    def make(**options: Any) -> ImageKitStorage:
        storage = imagekit_storage_factory(**options)
        assert isinstance(storage, ImageKitStorage)
        return storage

    return make
