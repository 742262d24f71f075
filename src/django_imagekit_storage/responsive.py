"""Responsive image URLs for views, serializers and the template tags.

Everything here is string work on top of the storage's ``url()``: no network call, no file
is ever opened (image sizes come from the model's ``width_field``/``height_field``). Files on
a storage other than :class:`~django_imagekit_storage.storage.ImageKitStorage` get their
plain ``url()`` and no transformations; an empty field gives ``""``/``None``.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from django_imagekit_storage.delivery import TRANSFORMATION_KEYS

if TYPE_CHECKING:
    from django.core.files.storage import Storage

__all__ = [
    "DEFAULT_WIDTHS",
    "ImageData",
    "closest_transformation_key",
    "image_data",
    "image_url",
    "img_html",
    "normalize_transformation",
    "parse_widths",
    "srcset",
    "transformation_key",
]

#: Candidate widths of a ``srcset`` when none are given and no ``width`` is set.
DEFAULT_WIDTHS: tuple[int, ...] = (320, 640, 960, 1280, 1920)

# Short code -> the first SDK long name that has it ("co" is both font_color and color).
_LONG_NAMES: dict[str, str] = {}
for _long, _short in TRANSFORMATION_KEYS.items():
    _LONG_NAMES.setdefault(_short, _long)
    _LONG_NAMES[_long] = _long
_LONG_NAMES["overlay"] = "overlay"  # the SDK's nested overlay mapping (Python helpers only)
# Keys a template argument cannot express (a nested mapping): never suggested to a template.
_PYTHON_ONLY_KEYS = frozenset({"overlay"})

#: The <img> attributes img_html() writes from the image data itself.
_DATA_ATTRIBUTES = frozenset({"src", "srcset", "sizes", "width", "height"})
_ATTRIBUTE_NAME = re.compile(r"^[a-zA-Z_:][-a-zA-Z0-9_:.]*\Z")

Transformation = Sequence[Mapping[str, object]]


class ImageData(TypedDict):
    """What a view or serializer needs to write an ``<img>``: the tag's data, as a dict."""

    url: str
    srcset: str
    sizes: str
    width: int | None
    height: int | None


def transformation_key(key: str) -> str:
    """The SDK long name for ``key`` (a long name or ImageKit short code); ``KeyError`` if unknown."""
    return _LONG_NAMES[key]


def closest_transformation_key(
    key: str, extra: Iterable[str] = (), *, exclude: Iterable[str] = ()
) -> str | None:
    """The valid key (long name, short code or one of ``extra``, none of ``exclude``) nearest
    to ``key``, if any."""
    excluded = frozenset(exclude)
    candidates = [name for name in (*_LONG_NAMES, *extra) if name not in excluded]
    matches = difflib.get_close_matches(key.lower(), candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_message(key: str, extra: Iterable[str] = (), *, tag: str | None = None) -> str:
    """Says what is wrong with ``key``, the closest valid key, and what is valid.

    With ``tag`` (a template tag's name), keys only the Python helpers take are not valid.
    """
    extra = sorted(extra)
    if tag and key in _PYTHON_ONLY_KEYS:
        return (
            f"{key!r} is a nested mapping, which a template argument cannot express: pass it "
            "to the Python helpers (django_imagekit_storage.responsive), or write the layer "
            'as a transformation string with raw="l-text,i-Hello,l-end".'
        )
    closest = closest_transformation_key(key, extra, exclude=_PYTHON_ONLY_KEYS if tag else ())
    hint = f" Did you mean {closest!r}?" if closest else ""
    own = f"{tag}'s own ({', '.join(extra)}) or " if tag and extra else ""
    return (
        f"Unknown argument {key!r}.{hint} Arguments are {own}ImageKit transformations: the "
        "SDK's long names (width, height, quality, crop, format, ...) or ImageKit's short codes "
        "(w, h, q, c, f, ...); 'raw' passes a transformation string through as is."
    )


def normalize_transformation(
    transformation: Transformation | Mapping[str, object] | None,
) -> list[dict[str, object]]:
    """A list of steps keyed by SDK long names; ``ValueError`` naming an unknown key.

    Accepts one mapping (a single step) or a list of them, keyed by long names or short codes.
    """
    if not transformation:
        return []
    steps = [transformation] if isinstance(transformation, Mapping) else transformation
    normalized: list[dict[str, object]] = []
    for step in steps:
        out: dict[str, object] = {}
        for key, value in step.items():
            long = _LONG_NAMES.get(key)
            if long is None:
                raise ValueError(unknown_key_message(key))
            if long in out:
                raise ValueError(f"ImageKit transformation {long!r} is given twice in one step.")
            out[long] = value
        normalized.append(out)
    return normalized


# --- resolving a value to (storage, name, original size) -----------------------------------


@dataclass(frozen=True)
class _Source:
    storage: Storage
    name: str
    imagekit: bool
    original_width: int | None
    original_height: int | None


def _positive_int(value: object) -> int | None:
    """A pixel count (``400``, ``"400"``, ``400.0``); None for anything else (``0.5``, ``"auto"``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return round(number) if number >= 1 and number == number and number != float("inf") else None


def _is_imagekit(storage: Storage) -> bool:
    # __class__ sees through default_storage's LazyObject. If storage.py was never imported,
    # no storage can be an ImageKitStorage: no need to import it (and the SDK) to find out.
    cls = storage.__class__
    module = sys.modules.get("django_imagekit_storage.storage")
    return module is not None and issubclass(cls, module.ImageKitStorage)


def _source(value: object) -> _Source | None:
    if value is None or value == "":
        return None
    if isinstance(value, FieldFile):
        if not value.name:
            return None
        width = height = None
        field = value.field
        width_field = getattr(field, "width_field", None)
        height_field = getattr(field, "height_field", None)
        # Never value.width/height: those open and read the file.
        if width_field and height_field:
            width = _positive_int(getattr(value.instance, width_field, None))
            height = _positive_int(getattr(value.instance, height_field, None))
        storage = value.storage
        return _Source(storage, value.name, _is_imagekit(storage), width, height)
    if isinstance(value, str):
        return _Source(default_storage, value, _is_imagekit(default_storage), None, None)
    raise TypeError(
        f"Expected a FieldFile (e.g. instance.image) or a file name on the default storage, "
        f"not {type(value).__name__}."
    )


# --- sizes ---------------------------------------------------------------------------------


def _aspect(step: Mapping[str, object], source: _Source) -> float | None:
    """height / width of the output, when it can be known without the file."""
    ratio = step.get("aspect_ratio")
    if isinstance(ratio, str) and "-" in ratio:
        a, _, b = ratio.partition("-")
        wa, hb = _positive_int(a), _positive_int(b)
        if wa and hb:
            return hb / wa
    if source.original_width and source.original_height:
        return source.original_height / source.original_width
    return None


def _output_size(
    step: Mapping[str, object], source: _Source, width: int | None
) -> tuple[int | None, int | None]:
    """The pixel size ImageKit returns for ``step`` with its width set to ``width``."""
    height = _positive_int(step.get("height"))
    ratio = _aspect(step, source)
    if width and height:
        crop = step.get("crop")
        w0, h0 = source.original_width, source.original_height
        if crop in ("at_max", "at_max_enlarge", "at_least") and w0 and h0:
            pick = min if crop != "at_least" else max
            scale = pick(width / w0, height / h0)
            if crop == "at_max":
                scale = min(scale, 1.0)
            return max(1, round(w0 * scale)), max(1, round(h0 * scale))
        return width, height
    if width:
        return width, (max(1, round(width * ratio)) if ratio else None)
    if height:
        return (max(1, round(height / ratio)) if ratio else None), height
    return source.original_width, source.original_height


def _with_width(steps: list[dict[str, object]], width: int) -> list[dict[str, object]]:
    """The steps with the first one resized to ``width``; a given height scales along."""
    first = dict(steps[0]) if steps else {}
    old_width = _positive_int(first.get("width"))
    old_height = _positive_int(first.get("height"))
    if old_height is not None:
        if old_width:
            first["height"] = max(1, round(old_height * width / old_width))
        else:
            del first["height"]  # the original's aspect ratio drives the height
    if "width" in first:
        first["width"] = width
    else:
        first = {"width": width, **first}  # width first reads best: ?tr=w-640,q-80
    return [first, *steps[1:]]


def _width_item(item: object) -> int | None:
    if isinstance(item, int) and not isinstance(item, bool):
        return item if item > 0 else None
    if isinstance(item, str):
        text = item.strip().removesuffix("w")
        return int(text) if text.isdigit() and int(text) > 0 else None
    return None


def parse_widths(widths: object) -> tuple[int, ...]:
    """``"320,640"``, ``"320w 640w"``, ``[320, 640]`` -> ``(320, 640)``; ``ValueError`` otherwise."""
    items: Iterable[object]
    if isinstance(widths, str):
        items = widths.replace(",", " ").split()
    elif isinstance(widths, Iterable):
        items = widths
    else:
        items = [widths]
    parsed = set()
    for item in items:
        number = _width_item(item)
        if number is None:
            raise ValueError(
                f"widths must be whole pixel counts like '320,640,1280'; got {item!r}."
            )
        parsed.add(number)
    if not parsed:
        raise ValueError("widths is empty: give at least one width, e.g. '320,640'.")
    return tuple(sorted(parsed))


def _derive_width(steps: list[dict[str, object]], source: _Source) -> list[dict[str, object]]:
    """A height without a width gets the width that keeps the aspect ratio, when known."""
    if not steps or "height" not in steps[0] or _positive_int(steps[0].get("width")):
        return steps
    height = _positive_int(steps[0]["height"])
    ratio = _aspect(steps[0], source)
    if height is None or ratio is None:
        return steps
    rest = {key: value for key, value in steps[0].items() if key != "width"}
    return [{"width": max(1, round(height / ratio)), **rest}, *steps[1:]]


# Transformations that leave the output's pixel size to width/height/aspect_ratio/crop (which
# _output_size models). Any other key (rotation, raw, dpr, trim, zoom, border, named, ...) may
# change it in a way only ImageKit knows.
_SIZE_NEUTRAL_KEYS = frozenset(
    {
        "width",
        "height",
        "aspect_ratio",
        "crop",
        "crop_mode",
        "focus",
        "x",
        "y",
        "x_center",
        "y_center",
        "quality",
        "format",
        "progressive",
        "lossless",
        "color_profile",
        "metadata",
        "background",
        "blur",
        "radius",
        "opacity",
        "flip",
        "grayscale",
        "contrast_stretch",
        "sharpen",
        "unsharp_mask",
        "gradient",
        "color_replace",
        "colorize",
        "default_image",
        "ai_retouch",
        "ai_remove_background",
        "ai_remove_background_external",
    }
)


def _size_predictable(steps: list[dict[str, object]]) -> bool:
    """Whether ImageKit's output size follows from the first step's sizing alone.

    A wrong ``width``/``height`` distorts the image (``rt=90`` swaps them), none is harmless:
    with a chained step or a key that may resize, rotate or pad, the size is not claimed.
    """
    if len(steps) > 1:
        return False
    for key, value in (steps[0] if steps else {}).items():
        if value is None or value == "":
            continue
        if key == "rotation" and str(value) in ("0", "360"):
            continue
        if key not in _SIZE_NEUTRAL_KEYS:
            return False
    return True


def _given(step: Mapping[str, object], key: str) -> bool:
    return step.get(key) not in (None, "")


def _fixed(steps: list[dict[str, object]]) -> bool:
    """A size no width candidate may replace: a relative or computed width (``0.5``,
    ``"iw_div_2"``), or a height whose width cannot be known. One URL, no ``srcset``."""
    first = steps[0] if steps else {}
    if _given(first, "width"):
        return _positive_int(first["width"]) is None
    return _given(first, "height")


def _given_widths(widths: object) -> tuple[int, ...] | None:
    """The caller's ``widths`` parsed, ``None`` if not given. Parsed before anything else,
    so that a mistake fails on every storage, not only in production."""
    return parse_widths(widths) if widths is not None and widths != "" else None


def _candidates(
    steps: list[dict[str, object]], source: _Source, widths: tuple[int, ...] | None
) -> tuple[int, ...]:
    requested = _positive_int(steps[0].get("width")) if steps else None
    if widths is not None:
        chosen = widths
    elif requested:
        chosen = (requested, requested * 2)  # 1x and 2x screens
    else:
        chosen = DEFAULT_WIDTHS
    limit = source.original_width
    if limit:
        # Wider than the original is upscaling: bytes for no detail.
        capped = tuple(width for width in chosen if width <= limit)
        chosen = capped or (min(limit, max(chosen)),)
    return chosen


# --- the helpers -----------------------------------------------------------------------------


def _url(source: _Source, steps: list[dict[str, object]], expire: int | None) -> str:
    if not source.imagekit:
        return source.storage.url(source.name)
    url: str = source.storage.url(  # type: ignore[call-arg]
        source.name, transformation=steps or None, expire=expire
    )
    return url


def image_url(
    value: object,
    transformation: Transformation | Mapping[str, object] | None = None,
    *,
    expire: int | None = None,
) -> str:
    """The URL of ``value`` (a ``FieldFile`` or a name on the default storage) transformed.

    Signed when the storage signs (or ``expire`` is given); ``""`` for an empty field; the
    plain ``url()`` for a storage that is not ImageKit's.
    """
    source = _source(value)
    if source is None:
        return ""
    return _url(source, normalize_transformation(transformation), expire)


def _srcset(
    source: _Source, steps: list[dict[str, object]], widths: object, expire: int | None
) -> str:
    given = _given_widths(widths)
    steps = _derive_width(steps, source)
    if not source.imagekit or _fixed(steps):
        return ""
    return _join_srcset(_candidate_urls(source, steps, _candidates(steps, source, given), expire))


def _candidate_urls(
    source: _Source, steps: list[dict[str, object]], widths: tuple[int, ...], expire: int | None
) -> dict[int, str]:
    return {width: _url(source, _with_width(steps, width), expire) for width in widths}


def _join_srcset(urls: Mapping[int, str]) -> str:
    # A space would end the URL inside srcset: ImageKit reads %20 the same.
    return ", ".join(f"{url.replace(' ', '%20')} {width}w" for width, url in urls.items())


def srcset(
    value: object,
    widths: object = None,
    transformation: Transformation | Mapping[str, object] | None = None,
    *,
    expire: int | None = None,
) -> str:
    """A ``srcset`` value: one transformed URL per width (``"url 320w, url 640w"``).

    ``widths`` defaults to ``width`` and twice it when a width is set, else
    :data:`DEFAULT_WIDTHS`; widths above the original's (when known) are left out.
    """
    source = _source(value)
    if source is None:
        return ""
    return _srcset(source, normalize_transformation(transformation), widths, expire)


def image_data(
    value: object,
    *,
    widths: object = None,
    sizes: str | None = None,
    transformation: Transformation | Mapping[str, object] | None = None,
    expire: int | None = None,
) -> ImageData | None:
    """``{url, srcset, sizes, width, height}`` for an ``<img>``, or ``None`` for an empty field.

    ``width``/``height`` are the displayed image's pixel size (``None`` when unknown), from the
    transformation and the model's ``width_field``/``height_field``; the file is never read.
    """
    source = _source(value)
    if source is None:
        return None
    return _image_data(source, normalize_transformation(transformation), widths, sizes, expire)


def _image_data(
    source: _Source,
    steps: list[dict[str, object]],
    widths: object,
    sizes: str | None,
    expire: int | None,
) -> ImageData:
    given = _given_widths(widths)
    steps = _derive_width(steps, source)
    first = steps[0] if steps else {}
    requested = _positive_int(first.get("width"))
    if not source.imagekit or _fixed(steps):
        if _given(first, "width") and requested is None:
            width = height = None  # relative or computed: only ImageKit knows
        elif source.imagekit and not _size_predictable(steps):
            width = height = None
        else:
            width, height = _output_size(first, source, requested)
        url = _url(source, steps if source.imagekit else [], expire)
        return {"url": url, "srcset": "", "sizes": "", "width": width, "height": height}
    urls = _candidate_urls(source, steps, _candidates(steps, source, given), expire)
    src_width = requested or max(urls)
    src_steps = steps if requested else _with_width(steps, src_width)
    if _size_predictable(steps):
        width, height = _output_size(src_steps[0], source, src_width)
    else:
        width = height = None
    # The src is usually one of the candidates: reuse its URL (and its signature).
    same = src_width in urls and (not requested or str(first.get("width")) == str(requested))
    url = urls[src_width] if same else _url(source, src_steps, expire)
    if sizes is None:
        sizes = f"{width or requested}px" if requested else "100vw"
    return {
        "url": url,
        "srcset": _join_srcset(urls),
        "sizes": sizes,
        "width": width,
        "height": height,
    }


def img_html(
    data: ImageData | None,
    attrs: Mapping[str, object] | None = None,
    *,
    autoescape: bool = True,
) -> SafeString:
    """The ``<img>`` element for ``data`` (from :func:`image_data`), ``""`` for ``None``.

    ``attrs`` are extra attributes (``alt``, ``class``, ``loading``, ...): escaped unless they
    are safe strings (as Django escapes variables and trusts literals); ``None``/``False``
    leaves an attribute out, ``True`` writes it bare. ``alt`` is always written: ``""`` when
    missing, ``None`` or ``False``.
    """
    if data is None:
        return SafeString("")

    def escape(value: object) -> str:
        text = value if isinstance(value, str) else str(value)
        return conditional_escape(text) if autoescape else text

    # Our own values are always escaped ("&" between ik-t and ik-s must be "&amp;").
    html = [f'<img src="{conditional_escape(data["url"])}"']
    if data["srcset"]:
        html.append(f' srcset="{conditional_escape(data["srcset"])}"')
        if data["sizes"]:
            html.append(f' sizes="{escape(data["sizes"])}"')
    if data["width"] and data["height"]:
        html.append(f' width="{data["width"]}" height="{data["height"]}"')
    extra = dict(attrs or {})
    if extra.get("alt") in (None, False):
        extra["alt"] = ""  # never left out: no alt makes screen readers read the URL
    for name, value in extra.items():
        if not _ATTRIBUTE_NAME.match(name):
            raise ValueError(f"{name!r} is not an HTML attribute name.")
        if name.lower() in _DATA_ATTRIBUTES:
            # A second one would be ignored by browsers: the first, from data, would win.
            raise ValueError(
                f"{name!r} comes from the image data: set it through image_data() (widths, "
                "sizes, transformation) instead of as an extra attribute."
            )
        if value is None or value is False:
            continue
        if value is True:
            html.append(f" {name}")
        else:
            html.append(f' {name}="{escape(value)}"')
    html.append(">")
    return mark_safe("".join(html))  # noqa: S308  # every value above is escaped
