"""Every exception this library raises on purpose.

API failures are ``ImageKitStorageError`` or a subclass and carry what a person needs to
act: the HTTP status, ImageKit's own message and help text, the operation and the
media-library path. No exception text ever contains a key.
"""

from __future__ import annotations

__all__ = [
    "ImageKitAuthenticationError",
    "ImageKitConnectionError",
    "ImageKitFileExistsError",
    "ImageKitResponseError",
    "ImageKitStorageError",
    "ImageKitTimeoutError",
    "InvalidImageError",
    "MaxBytesError",
]


class ImageKitStorageError(Exception):
    """An ImageKit API call failed.

    Attributes are ``None`` where unknown: ``status_code`` (HTTP status), ``message`` and
    ``help`` (ImageKit's own words), ``operation`` (e.g. ``"upload"``) and ``name`` (the
    media-library path the call was about, the storage's ``location`` included, so that
    it can be looked up in ImageKit as it is).
    """

    def __init__(
        self,
        summary: str,
        *,
        operation: str | None = None,
        name: str | None = None,
        status_code: int | None = None,
        message: str | None = None,
        help: str | None = None,  # ImageKit's field name
    ) -> None:
        self.summary = summary
        self.operation = operation
        self.name = name
        self.status_code = status_code
        self.message = message
        self.help = help
        super().__init__(self._text())

    def _text(self) -> str:
        parts = []
        if self.operation:
            target = f" of {self.name!r}" if self.name is not None else ""
            parts.append(f"ImageKit {self.operation}{target} failed")
        parts.append(self.summary)
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.message:
            parts.append(self.message)
        text = ": ".join(parts)
        if self.help:
            text += f" (ImageKit's help: {self.help})"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only state must survive pickling (multiprocessing, Celery results).
        return (_rebuild, (type(self), self.summary, self.__dict__.copy()))


def _rebuild(
    cls: type[ImageKitStorageError], summary: str, state: dict[str, object]
) -> ImageKitStorageError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._text())
    return error


class ImageKitAuthenticationError(ImageKitStorageError):
    """ImageKit refused the private key (HTTP 401 or 403)."""


class ImageKitConnectionError(ImageKitStorageError):
    """ImageKit could not be reached, or the connection broke before an answer."""


class ImageKitTimeoutError(ImageKitConnectionError):
    """The call did not finish within its deadline (``timeout`` or ``upload_timeout``)."""


class ImageKitFileExistsError(ImageKitStorageError):
    """The upload was refused because the path is taken and overwriting is off."""


class ImageKitResponseError(ImageKitStorageError):
    """ImageKit answered, but the answer cannot be used (not JSON, a field missing)."""


class InvalidImageError(ValueError):
    """The bytes are not an image this library can safely decode (the message says why)."""


class MaxBytesError(ValueError):
    """The image is valid, but no output of at least 16 px fits in ``max_bytes``."""
