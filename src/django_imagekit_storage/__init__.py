"""django-imagekit-storage: put a Django project's media on ImageKit.io.

The public names are imported lazily: importing the package configures nothing, reads no
setting, and does not import the ImageKit SDK or Pillow until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# Public name -> module that defines it.
_EXPORTS = {
    "FileInfo": "storage",
    "ImageKitAuthenticationError": "exceptions",
    "ImageKitConnectionError": "exceptions",
    "ImageKitFileExistsError": "exceptions",
    "ImageKitResponseError": "exceptions",
    "ImageKitStorage": "storage",
    "ImageKitStorageError": "exceptions",
    "ImageKitTimeoutError": "exceptions",
    "ImageSpec": "images",
    "InvalidImageError": "exceptions",
    "MaxBytesError": "exceptions",
    "OptimizedImage": "images",
    "optimize_image_from_bytes": "images",
    "optimize_image_variants": "images",
}

__all__ = [
    "FileInfo",
    "ImageKitAuthenticationError",
    "ImageKitConnectionError",
    "ImageKitFileExistsError",
    "ImageKitResponseError",
    "ImageKitStorage",
    "ImageKitStorageError",
    "ImageKitTimeoutError",
    "ImageSpec",
    "InvalidImageError",
    "MaxBytesError",
    "OptimizedImage",
    "__version__",
    "optimize_image_from_bytes",
    "optimize_image_variants",
]

if TYPE_CHECKING:
    from django_imagekit_storage.exceptions import (
        ImageKitAuthenticationError,
        ImageKitConnectionError,
        ImageKitFileExistsError,
        ImageKitResponseError,
        ImageKitStorageError,
        ImageKitTimeoutError,
        InvalidImageError,
        MaxBytesError,
    )
    from django_imagekit_storage.images import (
        ImageSpec,
        OptimizedImage,
        optimize_image_from_bytes,
        optimize_image_variants,
    )
    from django_imagekit_storage.storage import FileInfo, ImageKitStorage


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
