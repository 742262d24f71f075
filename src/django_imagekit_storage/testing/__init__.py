"""Test ImageKit code offline: a stand-in ImageKit server and a pytest plugin.

``FakeImageKitServer`` speaks ImageKit's upload, management and delivery APIs on 127.0.0.1;
point the ``imagekitio`` SDK (or ``ImageKitStorage``) at its ``base_url``. The pytest plugin
(``django_imagekit_storage.testing.plugin``, registered automatically) provides the
``imagekit_server``, ``imagekit_storage`` and ``imagekit_settings`` fixtures.

The names are imported lazily, so loading the pytest plugin does not import ``http.server``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["ROUTES", "FakeImageKitServer", "RecordedRequest", "Route", "StoredFile"]

if TYPE_CHECKING:
    from django_imagekit_storage.testing.server import (
        ROUTES,
        FakeImageKitServer,
        RecordedRequest,
        Route,
        StoredFile,
    )


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.server"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
