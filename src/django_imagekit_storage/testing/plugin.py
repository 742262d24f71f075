"""The pytest plugin (``pytest11`` entry point): fixtures around the stand-in ImageKit server.

pytest loads this module in every run of every project that installs the package, so it
imports nothing beyond pytest at import time: the server, Django and the storage are imported
inside the fixtures that need them, and nothing here reads or configures Django settings.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from django.core.files.storage import Storage

    from django_imagekit_storage.testing.server import FakeImageKitServer

__all__ = [
    "imagekit_server",
    "imagekit_server_session",
    "imagekit_settings",
    "imagekit_storage",
    "imagekit_storage_factory",
]

_STORAGE_MODULE = "django_imagekit_storage.storage"
_BACKEND = f"{_STORAGE_MODULE}.ImageKitStorage"


@pytest.fixture(scope="session")
def imagekit_server_session() -> Iterator[FakeImageKitServer]:
    """The session's stand-in ImageKit server, started once. Its state is shared by every test
    that uses it: prefer ``imagekit_server``, which resets it."""
    from django_imagekit_storage.testing.server import FakeImageKitServer

    server = FakeImageKitServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imagekit_server(imagekit_server_session: FakeImageKitServer) -> Iterator[FakeImageKitServer]:
    """The running stand-in ImageKit server with no files, requests or faults."""
    imagekit_server_session.reset()
    yield imagekit_server_session
    # Wakes requests still stalled by this test's faults.
    imagekit_server_session.reset()


def _storage_options(server: FakeImageKitServer) -> dict[str, object]:
    return {
        "private_key": server.private_key,
        "url_endpoint": server.url_endpoint,
        "base_url": server.base_url,
    }


@pytest.fixture
def imagekit_storage_factory(
    imagekit_server: FakeImageKitServer,
) -> Iterator[Callable[..., Storage]]:
    """``factory(**options)``: an ``ImageKitStorage`` on the stand-in server with more
    options (``location``, ``file_overwrite``, ...); every one is closed after the test."""
    created: list[Storage] = []

    def factory(**options: object) -> Storage:
        storage_class = importlib.import_module(_STORAGE_MODULE).ImageKitStorage
        storage = cast("Storage", storage_class(**{**_storage_options(imagekit_server), **options}))
        created.append(storage)
        return storage

    yield factory
    for storage in created:
        cast("Any", storage).close()


@pytest.fixture
def imagekit_storage(imagekit_storage_factory: Callable[..., Storage]) -> Storage:
    """An ``ImageKitStorage`` pointed at the stand-in server (``imagekit_server``)."""
    return imagekit_storage_factory()


@pytest.fixture
def imagekit_settings(
    request: pytest.FixtureRequest, imagekit_server: FakeImageKitServer
) -> Iterator[FakeImageKitServer]:
    """Point Django's default storage at the stand-in server through pytest-django's
    ``settings``: sets ``IMAGEKIT_PRIVATE_KEY``, ``IMAGEKIT_URL_ENDPOINT``,
    ``IMAGEKIT_BASE_URL`` and ``STORAGES["default"]``, and returns the server.

    Settings rather than ``OPTIONS``: Django 4.2 and 5.0 drop the ``OPTIONS`` of the
    ``"default"`` alias when ``STORAGES`` is overridden in tests."""
    if not request.config.pluginmanager.hasplugin("django"):
        raise pytest.UsageError(
            "The imagekit_settings fixture needs pytest-django (pip install pytest-django); "
            "without it, use imagekit_storage or imagekit_storage_factory."
        )
    settings = request.getfixturevalue("settings")
    for name, value in _storage_options(imagekit_server).items():
        setattr(settings, f"IMAGEKIT_{name.upper()}", value)
    # STORAGES last: changing it makes Django drop storages created before these settings.
    storages = dict(getattr(settings, "STORAGES", None) or {})
    storages["default"] = {"BACKEND": _BACKEND}
    settings.STORAGES = storages
    yield imagekit_server
    _close_cached_storages()


def _close_cached_storages() -> None:
    """Close the ImageKit storages Django created during the test (``default_storage``)
    before pytest-django restores the settings and Django forgets them unclosed."""
    module = sys.modules.get(_STORAGE_MODULE)
    if module is None:
        return
    from django.core.files.storage import storages

    for storage in list(cast("Any", storages)._storages.values()):
        if isinstance(storage, module.ImageKitStorage):
            storage.close()
