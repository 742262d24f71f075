"""Bytes-in image optimisation: one decode, any number of outputs.

Takes the uploaded file's *bytes* (read once), so a main image and its thumbnails all come
from the same read. Pillow only: this module knows nothing of storages or HTTP.

Pipeline: open (restricted decoders) -> size check from the header (before any decode) ->
JPEG shrink-on-load (``draft``) to the largest size any output needs -> decode -> normalise
the mode (palette, 16-bit, float, CMYK...) -> resize -> apply the EXIF orientation to the
small image -> encode each output (smaller outputs resized from the largest one).
"""

from __future__ import annotations

import io
import logging
import math
import posixpath
import re
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from PIL import Image, ImageColor, UnidentifiedImageError

if TYPE_CHECKING:
    from django.core.files.base import ContentFile

from django_imagekit_storage.exceptions import InvalidImageError, MaxBytesError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "INPUT_FORMATS",
    "ImageSpec",
    "OptimizedImage",
    "optimize_image_from_bytes",
    "optimize_image_variants",
]

logger = logging.getLogger(__name__)

#: Largest input accepted by default, in pixels (width x height), checked from the header
#: before decoding. 50 MP admits 48 MP phone photos; a decoded 50 MP RGBA image is ~200 MB.
DEFAULT_MAX_PIXELS = 50_000_000

#: Decoders Pillow may use. Everything else (PSD, EPS, ICO, PCX, the long tail of plugins,
#: each an attack surface) is refused as "not a supported image".
INPUT_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "AVIF", "TIFF", "BMP")

# Output format -> (MIME type, extension, has an alpha channel).
_OUTPUT_FORMATS: dict[str, tuple[str, str, bool]] = {
    "WEBP": ("image/webp", ".webp", True),
    "JPEG": ("image/jpeg", ".jpg", False),
    "PNG": ("image/png", ".png", True),
    "AVIF": ("image/avif", ".avif", True),
}
_FORMAT_ALIASES = {"JPG": "JPEG"}
# Longest side each encoder can write (libwebp 16383, libjpeg 65500, AV1 65536): a wider
# output, say a panorama with max_size=None, is scaled to fit instead of failing to encode.
_ENCODER_MAX_SIDE = {"WEBP": 16383, "JPEG": 65500, "AVIF": 65536}

#: libwebp effort (method, 0-6) by output size, measured in benchmarks/bench_images.py
#: (docs/images.md): on a 2048 px photo, method 2 encodes in 0.44x the time of method 4 for
#: ~4-7% more bytes, and that encode is most of the call. Small outputs (thumbnails, the
#: images a page shows many of) are cheap to encode, so they get the full method 4.
WEBP_METHOD_LARGE = 2
WEBP_METHOD_SMALL = 4
WEBP_LARGE_PIXELS = 1_000_000
#: A non-JPEG RGB(A) source with at most this many distinct colours is treated as a graphic
#: (logo, diagram, flat art); each of its WEBP outputs that still has at most this many is
#: encoded both lossless and lossy, and the smaller kept. Counting stops at the first colour
#: over the limit, so a photo costs microseconds. 1024 admits antialiased logos (a 3-colour
#: one measured 841 colours).
GRAPHIC_MAX_COLOURS = 1024
#: Larger RGB profiles (LUT-based scanner or printer profiles, up to megabytes) are applied
#: to the pixels, converting them to sRGB, instead of being copied into every output.
#: Display profiles (Display P3, Adobe RGB) are well under 4 KB.
MAX_ICC_BYTES = 64 * 1024
# Lowest quality the max_bytes search goes to before it shrinks the image instead: below
# this, blocking artefacts look worse than a smaller picture.
QUALITY_FLOOR = 20
# Smallest longer side the max_bytes search shrinks to before giving up.
MIN_SIDE = 16
# Bisection steps after the first two encodes: quality 20-100 to within ~3 in 5 steps.
_BISECT_STEPS = 5
# Resizes by more than this factor first reduce() by an integer factor (box filter, fast),
# then LANCZOS the rest: indistinguishable from a plain LANCZOS at this gap.
_REDUCING_GAP = 3.0
_LANCZOS = Image.Resampling.LANCZOS

# EXIF orientation -> the transposition that makes the image upright.
_ORIENTATION = 0x0112
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# A TIFF's EXIF is its whole directory: these tags describe the source's pixel layout (size,
# strips, compression, samples) and would be false in any output; its ICC profile and XMP
# take their own paths (colour policy, xmp=).
_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320}
    | {322, 323, 324, 325, 338, 339, 530, 700, 34675}
)
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation="|<tiff:Orientation>)[0-9]')

# Errors Pillow raises for data it cannot decode (UnidentifiedImageError is an OSError;
# some plugins raise SyntaxError or struct.error on malformed headers, and the AVIF plugin
# raises RuntimeError for damaged pixel data). Caught only around open(), load() and EXIF.
# Pillow reports some damage (corrupt TIFF/EXIF tags, a malformed MPO) with a UserWarning
# and carries on; where the caller's filters turn warnings into errors, that warning is
# raised and means the same damage. The filters are the caller's to set: catch_warnings()
# would swap them process-wide, which is not thread-safe before Python 3.14.
_DECODE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    SyntaxError,
    struct.error,
    IndexError,
    RuntimeError,
    UserWarning,
)

MaxSize: TypeAlias = "int | tuple[int, int] | None"
Color: TypeAlias = "str | tuple[int, int, int]"


def _normalise_format(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"format must be a string such as 'WEBP', not {type(value).__name__}")
    name = _FORMAT_ALIASES.get(value.upper(), value.upper())
    if name not in _OUTPUT_FORMATS:
        choices = ", ".join([*_OUTPUT_FORMATS, *_FORMAT_ALIASES])
        raise ValueError(f"format {value!r} is not supported; use one of {choices}")
    if name not in Image.SAVE and not _load_plugin(name):
        raise ValueError(
            f"format {name!r} needs a Pillow built with its encoder "
            f"(AVIF: the Pillow 11.3+ wheels, or 11.2+ built with libavif); use WEBP instead"
        )
    return name


def _load_plugin(name: str) -> bool:
    Image.init()
    return name in Image.SAVE


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _check_max_size(value: object) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        side = _check_positive_int("max_size", value)
        return (side, side)
    if isinstance(value, tuple | list) and len(value) == 2:
        width = _check_positive_int("max_size width", value[0])
        height = _check_positive_int("max_size height", value[1])
        return (width, height)
    raise TypeError(f"max_size must be an int, a (width, height) tuple or None, not {value!r}")


@dataclass(frozen=True)
class ImageSpec:
    """One output: the keyword arguments of :func:`optimize_image_from_bytes`.

    ``format`` is normalised on creation (``"jpg"`` -> ``"JPEG"``); invalid values raise
    ``ValueError`` or ``TypeError`` here, before any image is decoded.
    """

    format: str = "WEBP"
    max_size: MaxSize = 2048
    quality: int = 80
    max_bytes: int | None = None
    keep_metadata: bool = False
    background: Color = "white"

    def __post_init__(self) -> None:
        object.__setattr__(self, "format", _normalise_format(self.format))
        box = _check_max_size(self.max_size)
        if box is not None and not isinstance(self.max_size, int):
            object.__setattr__(self, "max_size", box)  # a list becomes a hashable tuple
        if isinstance(self.quality, bool) or not isinstance(self.quality, int):
            raise TypeError(f"quality must be an int, not {type(self.quality).__name__}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be between 1 and 100, got {self.quality}")
        if self.max_bytes is not None:
            _check_positive_int("max_bytes", self.max_bytes)
        if not isinstance(self.keep_metadata, bool):
            raise TypeError("keep_metadata must be True or False")
        _background_rgb(self.background)

    @property
    def box(self) -> tuple[int, int] | None:
        """The bounding box as ``(width, height)``, or ``None`` for no resize."""
        return _check_max_size(self.max_size)


def _background_rgb(value: object) -> tuple[int, int, int]:
    if isinstance(value, str):
        try:
            rgb = ImageColor.getrgb(value)
        except ValueError:
            raise ValueError(
                f"background {value!r} is not a colour; use a name ('white'), '#rrggbb' "
                f"or an (r, g, b) tuple"
            ) from None
        return (rgb[0], rgb[1], rgb[2])
    if (
        isinstance(value, tuple)
        and len(value) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)
    ):
        return (value[0], value[1], value[2])
    raise ValueError(f"background must be a colour name or an (r, g, b) tuple, not {value!r}")


@dataclass(frozen=True)
class OptimizedImage:
    """An encoded image: bytes plus what a model field or an upload needs to know."""

    data: bytes = field(repr=False)
    format: str
    width: int
    height: int
    mime_type: str
    extension: str

    @property
    def size(self) -> int:
        """Length of ``data`` in bytes."""
        return len(self.data)

    def filename(self, name: str) -> str:
        """``name`` with its extension replaced by this image's (``"a/Cat.JPG"`` -> ``"a/Cat.webp"``)."""
        if not _is_file_name(name):
            raise ValueError(f"name must be a file name such as 'photos/cat.jpg', not {name!r}")
        head, tail = posixpath.split(name)
        # Only the last suffix goes: ".hidden" stays whole, "a.tar.gz" -> "a.tar.webp".
        stem = posixpath.splitext(tail)[0].rstrip(".") or tail
        return f"{head}/{stem}{self.extension}" if head else f"{stem}{self.extension}"

    def as_file(self, name: str) -> ContentFile[bytes]:
        """A ``ContentFile`` named like ``name`` with this image's extension, for ``FileField.save``."""
        from django.core.files.base import ContentFile

        return ContentFile(self.data, name=self.filename(name))


def _is_file_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and not name.endswith(("/", "\\"))


def _check_specs(specs: object) -> None:
    # Typed callers cannot get this wrong; untyped ones (and dicts built at runtime) can.
    if not isinstance(specs, Mapping) or not specs:
        raise ValueError("specs must be a non-empty mapping of name -> ImageSpec")
    for name, spec in specs.items():
        if not isinstance(spec, ImageSpec):
            raise TypeError(f"specs[{name!r}] must be an ImageSpec, not {type(spec).__name__}")


# --------------------------------------------------------------------------------- public API


def optimize_image_from_bytes(
    data: bytes,
    *,
    format: str = "WEBP",  # the public keyword name
    max_size: MaxSize = 2048,
    quality: int = 80,
    max_bytes: int | None = None,
    keep_metadata: bool = False,
    background: Color = "white",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> OptimizedImage:
    """Decode ``data`` once and encode it as one optimised image.

    Raises ``InvalidImageError`` for bytes that are not a safely decodable image (including
    inputs over ``max_pixels``) and ``MaxBytesError`` when no output of at least 16 px fits
    in ``max_bytes``. Bad arguments raise ``ValueError``/``TypeError`` before decoding.
    """
    spec = ImageSpec(
        format=format,
        max_size=max_size,
        quality=quality,
        max_bytes=max_bytes,
        keep_metadata=keep_metadata,
        background=background,
    )
    return optimize_image_variants(data, {"image": spec}, max_pixels=max_pixels)["image"]


def optimize_image_variants(
    data: bytes,
    specs: Mapping[str, ImageSpec],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict[str, OptimizedImage]:
    """Decode ``data`` once and encode one output per spec, keyed like ``specs``.

    The largest output is resized from the (shrink-on-load) decode; every smaller one is
    resized from that already-small image, so a thumbnail costs a few milliseconds.
    """
    _check_positive_int("max_pixels", max_pixels)
    _check_specs(specs)
    buffer = _as_buffer(data, specs)

    decoded = _decode(buffer, specs, max_pixels)
    work, targets = decoded.image, decoded.targets

    order = sorted(specs, key=lambda n: targets[n][0] * targets[n][1], reverse=True)
    resized = {work.size: work}  # outputs of the same size (say, WEBP and JPEG) share one
    results: dict[str, OptimizedImage] = {}
    for name in order:
        spec = specs[name]
        started = time.perf_counter()
        image = resized.get(targets[name])
        if image is None:
            image = work.resize(targets[name], _LANCZOS, reducing_gap=_REDUCING_GAP)
            resized[targets[name]] = image
        encoder = _Encoder(spec, decoded)
        result = encoder.encode(image)
        _stage(
            "encode",
            started,
            "%r: %s%s %dx%d, %d bytes (%d encodes)",
            name,
            result.format,
            " lossless" * encoder.lossless,
            result.width,
            result.height,
            result.size,
            encoder.encodes,
        )
        results[name] = result
    return {name: results[name] for name in specs}


# ------------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class _Decoded:
    """The one decode every output is made from."""

    image: Image.Image  # upright, 8-bit L/LA/RGB/RGBA, at the largest output's size
    targets: dict[str, tuple[int, int]]  # each output's size, by spec name
    metadata: _Metadata
    icc: bytes | None  # the profile outputs carry; None means sRGB
    palette_source: bool  # P/PA/1 source
    graphic: bool  # palette source or few colours: a logo or diagram rather than a photo


def _decode(buffer: io.BytesIO, specs: Mapping[str, ImageSpec], max_pixels: int) -> _Decoded:
    """Decode once, at the largest output's size.

    A function of its own so the full decode is freed on return, before any encode.
    """
    started = time.perf_counter()
    im = _open(buffer, max_pixels)  # not closed: closing would free the decoded pixels
    source_format = im.format or "?"
    source_size = im.size
    source_mode = im.mode
    _stage("open", started, "%s %s %dx%d", source_format, source_mode, *source_size)

    started = time.perf_counter()
    is_jpeg = source_format in ("JPEG", "MPO")
    # JPEG EXIF is in the header; PNG/TIFF may put it after the pixels (read after load).
    orientation = _orientation(im) if is_jpeg else 1
    targets, request = _plan(source_size, orientation, specs)
    if is_jpeg and request != source_size:
        # Shrink-on-load: the decoder scales by 1/2, 1/4 or 1/8, never below `request`.
        im.draft(None, request)
    try:
        im.load()
    except _DECODE_ERRORS as error:
        raise InvalidImageError(
            f"The {source_format} image data is truncated or corrupt ({error}); "
            f"upload the complete, undamaged file"
        ) from error
    if not is_jpeg:
        orientation = _orientation(im)
        targets, request = _plan(source_size, orientation, specs)
    _stage("decode", started, "at %dx%d (target %dx%d)", *im.size, *request)

    started = time.perf_counter()
    keep = any(spec.keep_metadata for spec in specs.values())
    metadata = _Metadata.read(im, keep=keep)
    work, palette_source, icc = _normalise_mode(im, metadata.icc)
    # Counted before the resize, whose antialiasing adds colours. JPEG's lossy coding leaves
    # no image with few colours: the photo path skips the count altogether.
    graphic = palette_source or (
        not is_jpeg
        and work.mode in ("RGB", "RGBA")
        and work.getcolors(GRAPHIC_MAX_COLOURS) is not None
    )
    _stage("normalise", started, "%s -> %s%s", source_mode, work.mode, ", graphic" * graphic)

    started = time.perf_counter()
    if work.size != request:
        work = work.resize(request, _LANCZOS, reducing_gap=_REDUCING_GAP)
    if orientation in _TRANSPOSE:
        work = work.transpose(_TRANSPOSE[orientation])
    work = _drop_opaque_alpha(work)
    if icc is not None and len(icc) > MAX_ICC_BYTES and _icc_space(icc) == b"RGB ":
        work, icc = _rgb_to_srgb(work, icc)
    _stage("resize", started, "to %dx%d, orientation %d, %s", *work.size, orientation, work.mode)
    return _Decoded(work, targets, metadata, icc, palette_source, graphic)


def _stage(stage: str, started: float, message: str, *args: object) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        elapsed = (time.perf_counter() - started) * 1000
        logger.debug("%s " + message + " in %.1f ms", stage, *args, elapsed)


def _as_buffer(data: object, outputs: Iterable[str]) -> io.BytesIO:
    if isinstance(data, bytes | bytearray | memoryview):
        # Logged first, even for empty input: a second read() of an upload gives b"".
        if logger.isEnabledFor(logging.DEBUG):
            names = ", ".join(map(repr, outputs))
            logger.debug("read %d bytes, outputs %s", memoryview(data).nbytes, names)
        if not len(data):
            raise InvalidImageError("The image is empty (0 bytes); upload a non-empty file")
        return io.BytesIO(data)
    hint = " (read it once: data = upload.read())" if hasattr(data, "read") else ""
    raise TypeError(f"data must be the image's bytes, not {type(data).__name__}{hint}")


def _open(buffer: io.BytesIO, max_pixels: int) -> Image.Image:
    formats = [f for f in INPUT_FORMATS if f != "AVIF" or _load_plugin("AVIF")]
    try:
        im = Image.open(buffer, formats=formats)
    except UnidentifiedImageError:
        raise InvalidImageError(_unidentified_message(buffer.getvalue(), formats)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow's own global limit (Image.MAX_IMAGE_PIXELS), hit inside open().
        raise InvalidImageError(
            f"The image's declared size is far too large to decode safely ({error}); refused "
            f"before decoding: upload a smaller image (to accept such images, raise Pillow's "
            f"process-wide PIL.Image.MAX_IMAGE_PIXELS at start-up, and max_pixels)"
        ) from None
    except _DECODE_ERRORS as error:
        kind = _sniff(buffer.getvalue()) or "image"
        raise InvalidImageError(
            f"The {kind} is truncated or its header is corrupt ({error}); "
            f"upload the complete, undamaged file"
        ) from error
    width, height = im.size
    if width <= 0 or height <= 0:
        im.close()
        raise InvalidImageError(f"The image declares no pixels ({width}x{height})")
    if width * height > max_pixels:
        im.close()
        raise InvalidImageError(
            f"The image is {width}x{height} ({_pixels(width * height)}), over the limit of "
            f"{_pixels(max_pixels)} (max_pixels); refused before decoding: upload a smaller "
            f"image, or raise max_pixels"
        )
    return im


def _pixels(count: int) -> str:
    return f"{count / 1e6:.1f} megapixels" if count >= 100_000 else f"{count:,} pixels"


def _sniff(data: bytes) -> str | None:
    """A name for what the first bytes look like, only to make error messages precise."""
    head = data[:1024]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
    if b"<svg" in head.lower():
        return "SVG"
    if head.startswith((b"%PDF", b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "PDF/PostScript"
    return None


def _unidentified_message(data: bytes, formats: list[str]) -> str:
    kind = _sniff(data)
    if kind in formats:
        return (
            f"The data starts like a {kind} image but its header is incomplete or corrupt; "
            f"upload the complete, undamaged file"
        )
    if kind == "HEIC":
        return (
            "HEIC/HEIF images (iPhone photos) are not supported; convert to JPEG first "
            "(on the iPhone: Settings > Camera > Formats > Most Compatible)"
        )
    if kind == "SVG":
        return "SVG is a vector format (which can carry scripts) and is not decoded here"
    if kind is not None:
        return f"{kind} files are not accepted; supported formats: {', '.join(formats)}"
    return f"The data is not an image in a supported format ({', '.join(formats)})"


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION, 1)
    except _DECODE_ERRORS:
        logger.debug("unreadable EXIF ignored")
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation >= 5 else size


def _plan(
    source_size: tuple[int, int], orientation: int, specs: Mapping[str, ImageSpec]
) -> tuple[dict[str, tuple[int, int]], tuple[int, int]]:
    """Each output's upright size, and the largest one in the source's (unrotated) axes."""
    upright = _oriented_size(source_size, orientation)
    targets = {name: _fit_in_box(upright, _output_box(spec)) for name, spec in specs.items()}
    largest = max(targets.values(), key=lambda size: size[0] * size[1])
    return targets, _oriented_size(largest, orientation)


def _output_box(spec: ImageSpec) -> tuple[int, int] | None:
    """The spec's box, within what its encoder can write."""
    limit = _ENCODER_MAX_SIDE.get(spec.format)
    box = spec.box
    if limit is None:
        return box
    return (limit, limit) if box is None else (min(box[0], limit), min(box[1], limit))


def _fit_in_box(size: tuple[int, int], box: tuple[int, int] | None) -> tuple[int, int]:
    """``size`` scaled to fit in ``box``, aspect kept, never enlarged, never 0 px."""
    width, height = size
    if box is None:
        return size
    scale = min(box[0] / width, box[1] / height, 1.0)
    if scale >= 1.0:
        return size
    return (
        min(box[0], max(1, round(width * scale))),
        min(box[1], max(1, round(height * scale))),
    )


@dataclass(frozen=True)
class _Metadata:
    """What may be copied to outputs: EXIF/XMP only with keep_metadata; ICC by colour policy."""

    exif: bytes | None
    xmp: bytes | None
    icc: bytes | None

    @classmethod
    def read(cls, im: Image.Image, *, keep: bool) -> _Metadata:
        icc = im.info.get("icc_profile")
        icc = icc if isinstance(icc, bytes) and icc else None
        if not keep:
            return cls(None, None, icc)
        exif: bytes | None = None
        try:
            parsed = im.getexif()
            for tag in _LAYOUT_TAGS.intersection(parsed):
                del parsed[tag]
            if len(parsed):
                parsed[_ORIENTATION] = 1  # the pixels are now upright
                exif = parsed.tobytes()
        except _DECODE_ERRORS:
            logger.debug("unreadable EXIF not kept")
        xmp = im.info.get("xmp")
        if isinstance(xmp, str):
            xmp = xmp.encode()
        # An XMP tiff:Orientation would rotate the already-upright pixels a second time.
        xmp = _XMP_ORIENTATION.sub(rb"\g<1>1", xmp) if isinstance(xmp, bytes) and xmp else None
        return cls(exif, xmp, icc)


def _icc_space(icc: bytes | None) -> bytes | None:
    # ICC header bytes 16-20: the data colour space ("RGB ", "GRAY", "CMYK", "Lab ").
    return icc[16:20] if icc is not None and len(icc) >= 128 else None


def _is_srgb(icc: bytes) -> bool:
    from PIL import ImageCms

    try:
        description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    except (ImageCms.PyCMSError, OSError, TypeError):
        return False
    return "srgb" in description.lower().replace(" ", "")


def _normalise_mode(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bool, bytes | None]:
    """Return (an L/LA/RGB/RGBA image, whether the source was a palette image, kept ICC)."""
    mode = im.mode
    palette_source = mode in ("P", "PA", "1")
    out: Image.Image
    if mode in ("L", "RGB") and "transparency" in im.info:
        out = im.convert(mode + "A")  # a PNG tRNS colour key becomes real alpha
    elif mode in ("L", "LA", "RGB", "RGBA"):
        out = im
    elif mode == "1":
        out = im.convert("L")
    elif mode in ("P", "PA"):
        # Resizing in P would be nearest-neighbour; RGB would silently drop transparency.
        out = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
    elif mode.startswith("I"):
        out = _int_to_l(im)
    elif mode == "F":
        out = _float_to_l(im)
    elif mode == "CMYK":
        out, icc = _cmyk_to_rgb(im, icc), None
    elif mode in ("RGBa", "La"):
        out = im.convert({"RGBa": "RGBA", "La": "LA"}[mode])
    else:  # RGBX, YCbCr, HSV, LAB...
        try:
            out = im.convert("RGB")
        except ValueError as error:
            raise InvalidImageError(f"Images in mode {mode} are not supported ({error})") from None
    out.info = {}  # nothing from the source leaks into an output unless asked for
    space = _icc_space(icc)
    if icc is not None and (space not in (b"RGB ", b"GRAY") or _is_srgb(icc)):
        icc = None  # untagged means sRGB on the web; a CMYK/Lab/unknown profile cannot apply
    return out, palette_source, icc


def _int_to_l(im: Image.Image) -> Image.Image:
    # Converting 16/32-bit integers to L clips everything above 255 to white: scale first.
    if im.mode.startswith("I;16"):
        # The range is known, 0-65535, however dark the picture: never guess it from the data.
        return im.convert("I").point(lambda value: value * (1 / 257)).convert("L")
    im = im.convert("I") if im.mode != "I" else im
    low, high = _extrema(im)
    if high <= 255 and low >= 0:
        return im.convert("L")
    if low >= 0 and high <= 65535:
        return im.point(lambda value: value * (1 / 257)).convert("L")
    span = (high - low) or 1
    return im.point(lambda value: (value - low) * (255 / span)).convert("L")


def _extrema(im: Image.Image) -> tuple[float, float]:
    low, high = cast("tuple[float, float]", im.getextrema())  # one band: (min, max)
    return low, high


def _float_to_l(im: Image.Image) -> Image.Image:
    low, high = _extrema(im)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InvalidImageError("The floating-point image contains NaN or infinite values")
    if low >= 0 and high <= 1:
        scale, offset = 255.0, 0.0
    elif low >= 0 and high <= 255:
        scale, offset = 1.0, 0.0
    else:
        scale, offset = 255 / ((high - low) or 1), -low * 255 / ((high - low) or 1)
    return im.point(lambda value: value * scale + offset).convert("L")


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    # Pillow's convert("RGB") is the naive 255-C formula: use the embedded profile if any.
    if icc is not None and _icc_space(icc) == b"CMYK":
        from PIL import ImageCms

        try:
            converted = ImageCms.profileToProfile(
                im,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",  # perceptual intent, the default in every Pillow
            )
        except (ImageCms.PyCMSError, OSError) as error:
            logger.debug("CMYK profile unusable (%s); naive conversion", error)
        else:
            if converted is not None:
                return converted
    return im.convert("RGB")


def _exact_palette(im: Image.Image) -> Image.Image | None:
    """``im`` as a palette image if it has at most 256 colours and the conversion is exact."""
    colours = im.getcolors(256) if im.mode in ("RGB", "RGBA") else None
    if colours is None:
        return None
    # Median cut keeps <= 256 colours exactly but cannot do alpha; octree can, usually.
    # Asking for exactly that many keeps the PLTE/tRNS chunks short.
    method = Image.Quantize.MEDIANCUT if im.mode == "RGB" else Image.Quantize.FASTOCTREE
    palette = im.quantize(len(colours), method=method, dither=Image.Dither.NONE)
    return palette if _same_pixels(palette.convert(im.mode), im) else None


def _same_pixels(a: Image.Image, b: Image.Image) -> bool:
    from PIL import ImageChops

    return ImageChops.difference(a, b).getbbox() is None


def _rgb_to_srgb(im: Image.Image, icc: bytes) -> tuple[Image.Image, bytes | None]:
    """Convert RGB(A) pixels from ``icc`` to sRGB; return (image, profile still needed)."""
    from PIL import ImageCms

    rgb = im.convert("RGB") if im.mode == "RGBA" else im
    try:
        converted = ImageCms.profileToProfile(
            rgb,
            ImageCms.ImageCmsProfile(io.BytesIO(icc)),
            ImageCms.createProfile("sRGB"),
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError) as error:
        logger.debug("RGB profile unusable (%s); kept as it is", error)
        return im, icc
    if converted is None:  # only with inPlace=True
        return im, icc
    if im.mode == "RGBA":
        converted.putalpha(im.getchannel("A"))
    converted.info = {}
    return converted, None


def _drop_opaque_alpha(im: Image.Image) -> Image.Image:
    # Fully opaque alpha costs bytes and (WEBP) encode time for nothing.
    if im.mode in ("RGBA", "LA") and im.getchannel("A").getextrema() == (255, 255):
        return im.convert(im.mode[:-1])
    return im


# ------------------------------------------------------------------------------- encoding

# A JPEG carries EXIF and XMP in one APP1 segment each, at most 65533 bytes ("Exif\0\0"
# included; XMP after a 29-byte namespace). Pillow refuses larger ones rather than split them.
_JPEG_MAX_EXIF = 65533
_JPEG_MAX_XMP = 65533 - 29


def _kept_metadata(spec: ImageSpec, metadata: _Metadata) -> tuple[bytes | None, bytes | None]:
    """The (EXIF, XMP) an output keeps: none unless asked for, and only what its format holds."""
    if not spec.keep_metadata:
        return None, None
    exif, xmp = metadata.exif, metadata.xmp
    if spec.format == "JPEG":
        # Big maker notes or editing histories (PNG, WEBP, TIFF sources): drop, don't fail.
        if exif is not None and len(exif) > _JPEG_MAX_EXIF:
            logger.warning("EXIF of %d bytes does not fit in a JPEG (64 KB); not kept", len(exif))
            exif = None
        if xmp is not None and len(xmp) > _JPEG_MAX_XMP:
            logger.warning("XMP of %d bytes does not fit in a JPEG (64 KB); not kept", len(xmp))
            xmp = None
    return exif, xmp


class _Encoder:
    """Encodes one spec's output, meeting its max_bytes if it has one."""

    def __init__(self, spec: ImageSpec, decoded: _Decoded) -> None:
        self.spec = spec
        self.exif, self.xmp = _kept_metadata(spec, decoded.metadata)
        self.icc = decoded.icc
        self.palette_source = decoded.palette_source
        self.graphic = decoded.graphic
        self.encodes = 0
        self.lossless = False  # what the last encode() chose, for the log

    def encode(self, image: Image.Image) -> OptimizedImage:
        spec = self.spec
        prepared = self._prepare(image)
        candidate = prepared
        if spec.format == "PNG" and self.palette_source:
            candidate = _exact_palette(prepared) or prepared  # palette in, palette out
        # For WEBP this is the lossy encode; the max_bytes search starts from it.
        first = data = self._save(candidate, spec.quality)
        self.lossless = False
        if (
            spec.format == "WEBP"
            and self.graphic
            and candidate.getcolors(GRAPHIC_MAX_COLOURS) is not None
        ):
            # Few colours: lossless is often several times smaller (flat areas) and fast, but
            # not always (a dithered GIF): one more encode, and the smaller is kept. Resized
            # into many colours, lossless is slow (10x lossy) and bigger: not tried.
            # Photos never get here.
            lossless = self._save(candidate, spec.quality, lossless=True)
            if len(lossless) <= len(first):
                data, self.lossless = lossless, True
        if spec.max_bytes is not None and len(data) > spec.max_bytes:
            # From the RGB(A) image: resizing a palette image would be nearest-neighbour.
            prepared, data = self._fit_max_bytes(prepared, first, spec.max_bytes)
            self.lossless = False
            logger.debug("max_bytes %d met after %d encodes", spec.max_bytes, self.encodes)
        mime, extension, _ = _OUTPUT_FORMATS[spec.format]
        return OptimizedImage(
            data=data,
            format=spec.format,
            width=prepared.width,
            height=prepared.height,
            mime_type=mime,
            extension=extension,
        )

    def _prepare(self, image: Image.Image) -> Image.Image:
        fmt = self.spec.format
        has_alpha = _OUTPUT_FORMATS[fmt][2]
        if image.mode in ("RGBA", "LA") and not has_alpha:
            canvas = Image.new("RGB", image.size, _background_rgb(self.spec.background))
            rgba = image.convert("RGBA") if image.mode == "LA" else image
            canvas.paste(rgba, mask=rgba.getchannel("A"))
            image = canvas
        elif image.mode in ("L", "LA") and fmt in ("WEBP", "AVIF"):
            image = image.convert("RGBA" if image.mode == "LA" else "RGB")
        image.info = {}
        return image

    def _options(self, image: Image.Image, quality: int, *, lossless: bool) -> dict[str, Any]:
        fmt = self.spec.format
        options: dict[str, Any] = {}
        if fmt == "JPEG":
            options.update(quality=quality, optimize=True, progressive=True)
        elif fmt == "WEBP":
            large = image.width * image.height > WEBP_LARGE_PIXELS
            method = WEBP_METHOD_LARGE if large else WEBP_METHOD_SMALL
            options.update(quality=quality, method=method, lossless=lossless)
            if self.graphic and not lossless and image.mode == "RGBA":
                # A graphic's bytes are mostly its antialiased alpha edges, which libwebp
                # stores losslessly by default: quantise them like the colours. At quality
                # 80 no alpha value moves by more than 2 (of 255); a 320 px logo is 15% smaller.
                options["alpha_quality"] = quality
        elif fmt == "AVIF":
            options.update(quality=quality)
        elif image.mode == "P":
            options.update(optimize=True)  # level 9 and an unused-entry-free palette: cheap here
        else:
            options.update(compress_level=6)
        # A palette's colours are RGB, so an RGB profile applies to quantised PNGs as well.
        space = b"GRAY" if image.mode in ("L", "LA") else b"RGB "
        if self.icc is not None and _icc_space(self.icc) == space:
            options["icc_profile"] = self.icc
        if self.exif:
            options["exif"] = self.exif
        if self.xmp and fmt == "PNG":
            from PIL import PngImagePlugin

            # Pillow's PNG writer has no xmp= option: XMP goes in its standard iTXt chunk.
            text = PngImagePlugin.PngInfo()
            text.add_itxt("XML:com.adobe.xmp", self.xmp.decode("utf-8", "replace"))
            options["pnginfo"] = text
        elif self.xmp:
            options["xmp"] = self.xmp
        return options

    def _save(self, image: Image.Image, quality: int, *, lossless: bool = False) -> bytes:
        self.encodes += 1
        out = io.BytesIO()
        image.save(out, self.spec.format, **self._options(image, quality, lossless=lossless))
        return out.getvalue()

    # -- max_bytes

    def _fit_max_bytes(
        self, image: Image.Image, first: bytes, limit: int
    ) -> tuple[Image.Image, bytes]:
        """Make the output fit; ``first`` is the encode at the spec's quality (lossy)."""
        if self.spec.format == "PNG":
            return self._fit_png(image, limit)
        return self._fit_lossy(image, first, limit)

    def _best_quality(
        self, image: Image.Image, limit: int, top: bytes | None
    ) -> tuple[bytes | None, int]:
        """Highest quality that fits, by bisection; (None, floor size) if even the floor fails."""
        high = self.spec.quality
        if top is None:
            top = self._save(image, high)
        if len(top) <= limit:
            return top, len(top)
        low = min(QUALITY_FLOOR, high)
        if low == high:
            return None, len(top)
        best = self._save(image, low)
        if len(best) > limit:
            return None, len(best)
        for _ in range(_BISECT_STEPS):
            if high - low <= 1:
                break
            middle = (low + high) // 2
            attempt = self._save(image, middle)
            if len(attempt) <= limit:
                low, best = middle, attempt
            else:
                high = middle
        return best, len(best)

    def _fit_lossy(
        self, image: Image.Image, lossy: bytes | None, limit: int
    ) -> tuple[Image.Image, bytes]:
        # A lossless WEBP that is too big falls back to this lossy search.
        best, size = self._best_quality(image, limit, lossy)
        if best is not None:
            return image, best
        return self._shrink(image, size, limit, lambda im: self._best_quality(im, limit, None))

    def _fit_png(self, image: Image.Image, limit: int) -> tuple[Image.Image, bytes]:
        def quantised(im: Image.Image) -> tuple[bytes | None, int]:
            if im.mode in ("RGB", "RGBA", "LA"):
                rgba = im.convert("RGBA") if im.mode == "LA" else im
                im = rgba.quantize(256, method=Image.Quantize.FASTOCTREE)
            attempt = self._save(im, 0)
            return (attempt if len(attempt) <= limit else None), len(attempt)

        best, size = quantised(image)
        if best is not None:
            return image, best
        return self._shrink(image, size, limit, quantised)

    def _shrink(
        self,
        image: Image.Image,
        size: int,
        limit: int,
        attempt: Callable[[Image.Image], tuple[bytes | None, int]],
    ) -> tuple[Image.Image, bytes]:
        longest = max(image.size)
        while longest > MIN_SIDE:
            # Bytes grow roughly with the pixel count: aim a little under the limit.
            scale = min(0.9, max(0.25, math.sqrt(limit / size) * 0.95))
            longest = max(MIN_SIDE, int(longest * scale))
            target = _fit_in_box(image.size, (longest, longest))
            smaller = image.resize(target, _LANCZOS, reducing_gap=_REDUCING_GAP)
            best, size = attempt(smaller)
            logger.debug("max_bytes: %dx%d gives %d bytes", *target, size)
            if best is not None:
                return smaller, best
        smallest = (
            f"of at least {MIN_SIDE} px"
            if max(image.size) > MIN_SIDE
            else f"even at its full {image.width}x{image.height} px"
        )
        raise MaxBytesError(
            f"No {self.spec.format} output {smallest} fits in {self.spec.max_bytes} bytes "
            f"(the smallest attempt was {size} bytes); raise max_bytes"
        )
