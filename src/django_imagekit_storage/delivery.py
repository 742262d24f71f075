"""Delivery URLs: building and signing, as pure string work (no I/O, no SDK import).

Unsigned URLs are byte-for-byte what the imagekitio 5 SDK's ``client.helper.build_url``
returns for the same ``src``, ``url_endpoint`` and ``transformation`` (the tests compare the
two over many inputs). Signed URLs use ImageKit's algorithm (``ik-t``/``ik-s``), with the
expiry rounded up to a window so that a page rendered twice within the window gets the same
URLs (browser and CDN caches keep working) and each URL stays valid for at least the
requested time.

Deliberate differences from the SDK helper:

* ``path`` is always a media-library path: a ``path`` starting with ``http://`` is not
  treated as an absolute URL (ImageKit names cannot contain ``:``).
* Signing needs a private key (``ValueError`` instead of an empty ``ik-s``) and a positive
  ``expire_seconds`` (the SDK silently makes a never-expiring URL for ``0``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import time
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qs, quote, urlparse, urlunparse

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "SIGNATURE_WINDOW_SECONDS",
    "TRANSFORMATION_KEYS",
    "build_url",
    "signature_expiry",
    "transformation_string",
]

#: Signed URLs expire on a multiple of this many seconds (or of ``expire_seconds`` when that
#: is shorter), so they are identical for that long and valid for at least ``expire_seconds``.
SIGNATURE_WINDOW_SECONDS = 900

#: The SDK helper's transformation table: long name -> URL short code (imagekitio 5.11).
TRANSFORMATION_KEYS: Mapping[str, str] = MappingProxyType(
    {
        # Basic sizing & layout
        "width": "w",
        "height": "h",
        "aspect_ratio": "ar",
        "background": "bg",
        "border": "b",
        "crop": "c",
        "crop_mode": "cm",
        "dpr": "dpr",
        "focus": "fo",
        "quality": "q",
        "x": "x",
        "x_center": "xc",
        "y": "y",
        "y_center": "yc",
        "format": "f",
        "video_codec": "vc",
        "audio_codec": "ac",
        "radius": "r",
        "rotation": "rt",
        "blur": "bl",
        "named": "n",
        "default_image": "di",
        "flip": "fl",
        "original": "orig",
        "start_offset": "so",
        "end_offset": "eo",
        "duration": "du",
        "streaming_resolutions": "sr",
        # AI & advanced effects
        "grayscale": "e-grayscale",
        "ai_upscale": "e-upscale",
        "ai_retouch": "e-retouch",
        "ai_variation": "e-genvar",
        "ai_drop_shadow": "e-dropshadow",
        "ai_change_background": "e-changebg",
        "ai_remove_background": "e-bgremove",
        "ai_remove_background_external": "e-removedotbg",
        "ai_edit": "e-edit",
        "contrast_stretch": "e-contrast",
        "shadow": "e-shadow",
        "sharpen": "e-sharpen",
        "unsharp_mask": "e-usm",
        "gradient": "e-gradient",
        "color_replace": "cr",
        "colorize": "e-colorize",
        "distort": "e-distort",
        # Other flags & finishing
        "progressive": "pr",
        "lossless": "lo",
        "color_profile": "cp",
        "metadata": "md",
        "density": "dn",
        "opacity": "o",
        "trim": "t",
        "zoom": "z",
        "page": "pg",
        # Text overlay transformations
        "font_size": "fs",
        "font_family": "ff",
        "font_color": "co",
        "inner_alignment": "ia",
        "padding": "pa",
        "alpha": "al",
        "typography": "tg",
        "line_height": "lh",
        # Subtitles transformations
        "font_outline": "fol",
        "font_shadow": "fsh",
        "color": "co",
        # Raw pass-through
        "raw": "raw",
    }
)

# RFC 3986 pchar minus unreserved letters/digits: left unencoded in paths, as the SDK does.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_NO_EXPIRY = 9999999999
_FLAG_ONLY = frozenset(
    (
        "e-grayscale",
        "e-contrast",
        "e-removedotbg",
        "e-bgremove",
        "e-upscale",
        "e-retouch",
        "e-genvar",
    )
)
_FLAG_OR_VALUE = frozenset(("e-sharpen", "e-shadow", "e-gradient", "e-usm", "e-dropshadow"))
# Keys (long names and short codes) whose value goes into the URL as is, with no special rule.
_SIMPLE_CODES: Mapping[str, str] = {
    key: code
    for long, code in TRANSFORMATION_KEYS.items()
    if code not in _FLAG_ONLY
    and code not in _FLAG_OR_VALUE
    and code not in ("di", "ff", "sr", "t", "raw")
    for key in (long, code)
}
_SIMPLE_OVERLAY_PATH = re.compile(r"^[a-zA-Z0-9-._/ ]*$")
_SIMPLE_OVERLAY_TEXT = re.compile(r"^[a-zA-Z0-9-._ ]*$")


# --- transformation strings (the SDK's rules, step by step) -------------------------------


def _format_number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _safe_btoa(text: str) -> str:
    return quote(base64.b64encode(text.encode("utf-8")).decode("ascii"), safe="")


def _strip_slashes(text: str) -> str:
    # The SDK removes at most one leading and one trailing slash.
    if text.startswith("/"):
        text = text[1:]
    if text.endswith("/"):
        text = text[:-1]
    return text


def _overlay_input(text: str, encoding: object) -> str:
    if not text:
        return ""
    text = _strip_slashes(text)
    if encoding == "plain" or (encoding != "base64" and _SIMPLE_OVERLAY_PATH.match(text)):
        return "i-" + text.replace("/", "@@")
    return "ie-" + _safe_btoa(text)


def _overlay_text(text: str, encoding: object) -> str:
    if not text:
        return ""
    if encoding == "plain" or (encoding != "base64" and _SIMPLE_OVERLAY_TEXT.match(text)):
        return "i-" + quote(text, safe="")
    return "ie-" + _safe_btoa(text)


def _overlay(overlay: Mapping[str, object]) -> str:
    kind = overlay.get("type", "")
    position: Mapping[str, object] = overlay.get("position", {})  # type: ignore[assignment]
    timing: Mapping[str, object] = overlay.get("timing", {})  # type: ignore[assignment]
    nested: Sequence[Mapping[str, object]] = overlay.get("transformation", [])  # type: ignore[assignment]
    if not kind:
        return ""
    parts: list[str] = []
    if kind == "text":
        text = overlay.get("text", "")
        if not text:
            return ""
        parts += ["l-text", _overlay_text(str(text), overlay.get("encoding", "auto"))]
    elif kind in ("image", "video", "subtitle"):
        parts.append({"image": "l-image", "video": "l-video", "subtitle": "l-subtitles"}[kind])
        source = overlay.get("input", "")
        if not source:
            return ""
        parts.append(_overlay_input(str(source), overlay.get("encoding", "auto")))
    elif kind == "solidColor":
        parts += ["l-image", "i-ik_canvas"]
        color = overlay.get("color", "")
        if not color:
            return ""
        parts.append(f"bg-{color}")
    layer_mode = overlay.get("layerMode") or overlay.get("layer_mode")
    if layer_mode:
        parts.append(f"lm-{layer_mode}")
    for prefix, camel, snake in (
        ("lx", "x", "x"),
        ("ly", "y", "y"),
        ("lxc", "xCenter", "x_center"),
        ("lyc", "yCenter", "y_center"),
        ("lap", "anchorPoint", "anchor_point"),
        ("lfo", "focus", "focus"),
    ):
        value = position.get(camel) or position.get(snake)
        if value:
            parts.append(f"{prefix}-{value}")
    for prefix, name in (("lso", "start"), ("leo", "end")):
        value = timing.get(name)
        if value:
            parts.append(f"{prefix}-{_format_number(value)}")
    duration = timing.get("duration")
    if duration:
        parts.append(f"ldu-{duration}")
    if nested:
        inner = transformation_string(nested)
        if inner and inner.strip():
            parts.append(inner)
    parts.append("l-end")
    return ",".join(parts)


def _step(step: Mapping[str, object]) -> str:
    parts: list[str] = []
    for key, raw in step.items():
        value: object = raw
        if value is None:
            continue
        # Fast path for the common case (w-300, q-80, f-auto): same result as the rules below.
        simple = _SIMPLE_CODES.get(key)
        if simple is not None:
            kind = type(value)
            if kind is int or (kind is str and value.strip()):  # type: ignore[attr-defined]
                parts.append(f"{simple}-{value}")
                continue
        if key == "overlay" and isinstance(value, dict):
            overlay = _overlay(value)
            if overlay and overlay.strip():
                parts.append(overlay)
            continue
        code = TRANSFORMATION_KEYS.get(key, key) if key else ""
        if not code:
            continue
        if code in _FLAG_ONLY:
            if value is True or value == "-" or value == "true":
                parts.append(code)
            continue
        if code in _FLAG_OR_VALUE and (
            str(value).strip() == "" or value is True or value == "true"
        ):
            parts.append(code)
            continue
        if key == "raw":
            if isinstance(value, str) and value.strip():
                parts.append(value)
            continue
        if code in ("di", "ff"):
            value = _strip_slashes(str(value) if value else "").replace("/", "@@")
        if code == "sr" and isinstance(value, list):
            value = "_".join(str(item) for item in value)
        if code == "t" and str(value).strip() == "":
            value = "true"
        if value is False or (isinstance(value, str) and value.strip() == ""):
            continue
        if value is True:
            value = "true"
        elif isinstance(value, (int, float)):
            value = _format_number(value)
        parts.append(f"{code}-{value}")
    return ",".join(parts)


def transformation_string(transformation: Sequence[Mapping[str, object]] | None) -> str:
    """The ``tr`` value for a list of transformation steps, exactly as the SDK writes it.

    Each mapping is one step (``,`` between its parameters, ``:`` between steps); keys are the
    SDK's long names (``width``) or ImageKit's short codes (``w``), which pass through as is.
    """
    if not transformation:
        return ""
    steps = [_step(step) for step in transformation if step]
    return ":".join(step for step in steps if step)


# --- URLs ----------------------------------------------------------------------------------


class _Endpoint(NamedTuple):
    prefix: str  # "scheme://netloc", or "" when the endpoint has no host (built per call then)
    scheme: str
    netloc: str
    path: str  # the endpoint's path without surrounding slashes
    query: Mapping[str, str]  # the endpoint's own query parameters, as the SDK keeps them
    sign_base: str  # what precedes the part of the URL that gets signed


@lru_cache(maxsize=64)
def _endpoint(url_endpoint: str) -> _Endpoint:
    parsed = urlparse(url_endpoint)
    query = {
        key: values[0] if len(values) == 1 else ",".join(values)
        for key, values in parse_qs(parsed.query).items()
    }
    scheme = parsed.scheme or "https"
    path = parsed.path.strip("/")
    prefix = f"{scheme}://{parsed.netloc}" if parsed.netloc else ""
    sign_base = f"{prefix}/{path}/" if path else f"{prefix}/"
    return _Endpoint(prefix, scheme, parsed.netloc, path, MappingProxyType(query), sign_base)


@lru_cache(maxsize=8192)
def _base_url(url_endpoint: str, path: str) -> str:
    # Everything before the query string; cached because pages repeat names.
    endpoint = _endpoint(url_endpoint)
    encoded = quote(path, safe=_PATH_SAFE).strip("/")
    parts = [part for part in (endpoint.path, encoded) if part]
    url_path = "/" + "/".join(parts) if parts else ""
    if endpoint.prefix:
        return endpoint.prefix + url_path
    return urlunparse((endpoint.scheme, endpoint.netloc, url_path, "", "", ""))


@lru_cache(maxsize=4096)
def _signature(private_key: str, message: str) -> str:
    # Cached: within a window the same URL is signed again and again.
    return hmac.new(private_key.encode("utf-8"), message.encode("utf-8"), hashlib.sha1).hexdigest()


def signature_expiry(expire_seconds: int | float, now: float | None = None) -> int:
    """The ``ik-t`` value for a URL that must stay valid for ``expire_seconds`` from ``now``.

    Rounded up to a multiple of ``min(SIGNATURE_WINDOW_SECONDS, expire_seconds)``: the same
    for every call within that window, never less than ``now + expire_seconds``, and never
    more than twice the requested lifetime for short expiries.
    """
    if isinstance(expire_seconds, bool) or not expire_seconds > 0:
        raise ValueError(
            f"expire_seconds must be a positive number of seconds, not {expire_seconds!r}."
        )
    if now is None:
        now = time.time()
    window = int(min(SIGNATURE_WINDOW_SECONDS, max(expire_seconds, 1)))
    earliest = math.ceil(now + expire_seconds)
    return -(-earliest // window) * window


def build_url(
    url_endpoint: str,
    path: str,
    *,
    transformation: Sequence[Mapping[str, object]] | None = None,
    signed: bool = False,
    private_key: str | None = None,
    expire_seconds: int | None = None,
    now: float | None = None,
) -> str:
    """The delivery URL of the media-library file ``path`` (no leading ``/`` needed).

    Unsigned, equal to the SDK's ``helper.build_url(src=path, url_endpoint=...,
    transformation=...)``: the path percent-encoded per RFC 3986, transformations as
    ``?tr=...``. Signed when ``signed`` is true or ``expire_seconds`` is given (as the SDK):
    ``ik-s`` is the HMAC-SHA1, keyed with ``private_key``, of the URL after the endpoint (query
    included) followed by the expiry; ``ik-t`` is the expiry (see :func:`signature_expiry`),
    left out when the URL never expires.
    """
    if not path:
        return ""
    url = _base_url(url_endpoint, path)
    tr = transformation_string(transformation) if transformation else ""
    endpoint = _endpoint(url_endpoint)
    if endpoint.query:
        query = dict(endpoint.query)
        if tr:
            query["tr"] = tr
        url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    elif tr:
        url += "?tr=" + tr
    if not signed and expire_seconds is None:
        return url
    if not private_key:
        raise ValueError("A private key is needed to sign ImageKit delivery URLs.")
    expiry = _NO_EXPIRY if expire_seconds is None else signature_expiry(expire_seconds, now)
    signed_part = url[len(endpoint.sign_base) :] if url.startswith(endpoint.sign_base) else url
    signature = _signature(private_key, signed_part + str(expiry))
    separator = "&" if "?" in url else "?"
    if expiry == _NO_EXPIRY:
        return f"{url}{separator}ik-s={signature}"
    return f"{url}{separator}ik-t={expiry}&ik-s={signature}"
