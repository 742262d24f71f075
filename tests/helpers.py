"""Small helpers shared by several test modules."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from typing import Any

from django.template import Context, Engine

#: A template engine with the tag library loaded by name, independent of the project's TEMPLATES.
engine = Engine(
    libraries={"imagekit_storage": "django_imagekit_storage.templatetags.imagekit_storage"}
)


def render(source: str, **context: object) -> str:
    return engine.from_string("{% load imagekit_storage %}" + source).render(Context(context))


class _StartTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def start_tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Each element as a browser's parser sees it: (tag, unescaped attributes)."""
    parser = _StartTags()
    parser.feed(html)
    parser.close()
    return parser.elements


class ForwardOnlyStream(io.RawIOBase):
    """A stream that can only be read forward, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)
