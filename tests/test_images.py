"""optimize_image_from_bytes / optimize_image_variants on images generated in memory."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import random
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageChops, ImageDraw, ImageFile, ImageFilter, ImageStat

from django_imagekit_storage import (
    ImageSpec,
    InvalidImageError,
    MaxBytesError,
    OptimizedImage,
    optimize_image_from_bytes,
    optimize_image_variants,
)
from django_imagekit_storage.images import DEFAULT_MAX_PIXELS, MIN_SIDE

Image.init()
HAS_AVIF = "AVIF" in Image.SAVE
OUTPUT_FORMATS = ["WEBP", "JPEG", "PNG"] + (["AVIF"] if HAS_AVIF else [])

# ------------------------------------------------------------------------- image factories


def noise(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Seeded uniform noise (Pillow's effect_noise is not seeded: tests must not vary)."""
    return Image.frombytes("L", size, random.Random(seed).randbytes(size[0] * size[1]))


def photo(size: tuple[int, int] = (320, 240), mode: str = "RGB") -> Image.Image:
    """Smooth, photo-like content (gradients and blurred noise), deterministic."""
    width, height = size
    small = (max(1, width // 16), max(1, height // 16))
    bands = [
        Image.linear_gradient("L").resize(size),
        Image.radial_gradient("L").resize(size),
        noise(small).resize(size, Image.Resampling.BICUBIC),
    ]
    return Image.merge("RGB", bands).convert(mode)


def quadrants(size: tuple[int, int] = (80, 40)) -> Image.Image:
    """Four flat colours: red top-left, green top-right, blue bottom-left, white bottom-right."""
    width, height = size
    image = Image.new("RGB", size, "white")
    image.paste((255, 0, 0), (0, 0, width // 2, height // 2))
    image.paste((0, 255, 0), (width // 2, 0, width, height // 2))
    image.paste((0, 0, 255), (0, height // 2, width // 2, height))
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def decode(result: OptimizedImage | bytes) -> Image.Image:
    data = result.data if isinstance(result, OptimizedImage) else result
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def close(color: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(color, expected, strict=True))


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(v * v for v in ImageStat.Stat(diff).rms) / 3
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def grey_extrema(image: Image.Image) -> tuple[int, int]:
    low, high = cast("tuple[int, int]", image.convert("L").getextrema())
    return low, high


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0112] = orientation
    # Set as a dict: before Pillow 11.1, tobytes() left out an IFD filled through get_ifd().
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    return exif


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
    b'tiff:Orientation="6" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="48,51.48N"/></rdf:RDF></x:xmpmeta>'
)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def icc_profile(
    space: bytes = b"RGB ", description: str = "Display P3 (test)", padding: int = 0
) -> bytes:
    """A minimal, valid ICC v2 profile: RGB matrix/TRC, grey TRC, or a CMYK -> Lab LUT that
    maps any ink without K to mid grey (so its use is unmistakable)."""
    desc_ascii = description.encode() + b"\0"
    desc = (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(desc_ascii))
        + desc_ascii
        + b"\0" * 8  # unicode language + count
        + b"\0" * 3  # scriptcode code + count
        + b"\0" * 67
    )

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)

    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0233) + b"\0\0"  # gamma 2.2
    tags: list[tuple[bytes, bytes]] = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249))]
    if space == b"RGB ":
        tags += [
            (b"rXYZ", xyz(0.5151, 0.2412, -0.0011)),
            (b"gXYZ", xyz(0.2920, 0.6922, 0.0419)),
            (b"bXYZ", xyz(0.1571, 0.0666, 0.7841)),
            (b"rTRC", curve),
            (b"gTRC", curve),
            (b"bTRC", curve),
        ]
    elif space == b"GRAY":
        tags.append((b"kTRC", curve))
    else:
        ramp = bytes(range(256))
        lut8 = (
            b"mft1\0\0\0\0"
            + bytes([4, 3, 2, 0])  # 4 inputs, 3 outputs, 2 grid points
            + b"".join(_s15(1.0 if i % 4 == 0 else 0.0) for i in range(9))  # identity
            + ramp * 4
            # CLUT corners (C, M, Y, K in {0, 1}, K fastest): black with K, else L* 50 grey.
            + bytes([128, 128, 128, 0, 128, 128]) * 8
            + ramp * 3
        )
        tags.append((b"A2B0", lut8))
    tags.append((b"cprt", b"text\0\0\0\0No copyright\0\0\0\0"))
    if padding:
        tags.append((b"zzzz", b"zzzz\0\0\0\0" + b"\0" * padding))  # a private tag
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, payload in tags:
        padded = payload + b"\0" * (-len(payload) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += padded
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0\0\0\0"
        + b"\x02\x10\0\0"
        + (b"prtr" if space == b"CMYK" else b"mntr")
        + space
        + (b"Lab " if space == b"CMYK" else b"XYZ ")
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + b"\0\0\0\0"  # intent
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


# ------------------------------------------------------------------------------ the API


@pytest.mark.parametrize(
    ("name", "expected"),
    [("webp", "WEBP"), ("JPEG", "JPEG"), ("jpg", "JPEG"), ("JPG", "JPEG"), ("png", "PNG")],
)
def test_format_names_and_aliases(name: str, expected: str) -> None:
    result = optimize_image_from_bytes(encode(photo(), "JPEG"), format=name)
    assert result.format == expected
    assert decode(result).format == expected


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_output_fields(fmt: str) -> None:
    result = optimize_image_from_bytes(encode(photo((300, 200)), "PNG"), format=fmt, max_size=150)
    mime, extension = {
        "WEBP": ("image/webp", ".webp"),
        "JPEG": ("image/jpeg", ".jpg"),
        "PNG": ("image/png", ".png"),
        "AVIF": ("image/avif", ".avif"),
    }[fmt]
    assert (result.format, result.mime_type, result.extension) == (fmt, mime, extension)
    assert (result.width, result.height) == (150, 100) == decode(result).size
    assert result.size == len(result.data)
    assert "data" not in repr(result)  # no megabytes of bytes in logs


def test_unknown_format_is_refused_before_decoding() -> None:
    with pytest.raises(ValueError, match=r"format 'GIF' is not supported; use one of WEBP"):
        optimize_image_from_bytes(b"not even an image", format="GIF")


def test_avif_without_an_encoder_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # As on a Pillow built without libavif (or older than 11.2).
    monkeypatch.delitem(Image.SAVE, "AVIF", raising=False)
    with pytest.raises(ValueError, match="'AVIF' needs a Pillow built with its encoder"):
        ImageSpec(format="avif")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"quality": 0}, ValueError, "quality must be between 1 and 100, got 0"),
        ({"quality": 101}, ValueError, "between 1 and 100"),
        ({"quality": 80.0}, TypeError, "quality must be an int"),
        ({"max_size": 0}, ValueError, "max_size must be positive"),
        ({"max_size": True}, TypeError, "max_size must be an int"),
        ({"max_size": (100,)}, TypeError, r"\(width, height\)"),
        ({"max_size": (100, -1)}, ValueError, "max_size height must be positive"),
        ({"max_bytes": 0}, ValueError, "max_bytes must be positive"),
        ({"background": "not-a-colour"}, ValueError, "is not a colour"),
        ({"background": (300, 0, 0)}, ValueError, "background must be"),
        ({"keep_metadata": "yes"}, TypeError, "keep_metadata"),
        ({"max_pixels": 0}, ValueError, "max_pixels must be positive"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        optimize_image_from_bytes(encode(photo(), "PNG"), **kwargs)  # type: ignore[arg-type]


def test_a_file_object_gets_a_hint_to_read_it_once() -> None:
    upload = SimpleUploadedFile("cat.png", encode(photo(), "PNG"))
    with pytest.raises(TypeError, match=r"upload\.read\(\)"):
        optimize_image_from_bytes(upload)  # type: ignore[arg-type]


def test_variant_specs_are_validated() -> None:
    data = encode(photo(), "PNG")
    with pytest.raises(ValueError, match="non-empty mapping"):
        optimize_image_variants(data, {})
    with pytest.raises(TypeError, match=r"specs\['thumb'\] must be an ImageSpec"):
        optimize_image_variants(data, {"thumb": {"max_size": 10}})  # type: ignore[dict-item]


def test_image_spec_is_frozen_and_normalised() -> None:
    spec = ImageSpec(format="jpg", max_size=[300, 200])  # type: ignore[arg-type]
    assert spec.format == "JPEG"
    assert spec.max_size == (300, 200)
    assert hash(spec) == hash(ImageSpec(format="JPEG", max_size=(300, 200)))
    with pytest.raises(AttributeError):
        spec.quality = 10  # type: ignore[misc]


# ----------------------------------------------------------------------------- sizing


@pytest.mark.parametrize(
    ("source", "max_size", "expected"),
    [
        ((400, 300), 200, (200, 150)),
        ((300, 400), 200, (150, 200)),
        ((400, 300), (100, 300), (100, 75)),
        ((400, 300), (400, 30), (40, 30)),
        ((400, 300), None, (400, 300)),
        ((120, 90), 2048, (120, 90)),  # never upscaled
        ((120, 90), (1000, 10), (13, 10)),
        ((3000, 2), 300, (300, 1)),  # extreme aspect: never 0 px
        ((2, 3000), 100, (1, 100)),
        ((1, 1), 16, (1, 1)),
    ],
)
def test_max_size(
    source: tuple[int, int], max_size: int | tuple[int, int] | None, expected: tuple[int, int]
) -> None:
    result = optimize_image_from_bytes(encode(photo(source), "PNG"), max_size=max_size)
    assert (result.width, result.height) == expected
    assert decode(result).size == expected


@pytest.mark.parametrize(
    ("fmt", "source", "expected"),
    [
        ("WEBP", (17000, 40), (16383, 39)),  # libwebp's limit
        ("JPEG", (70000, 20), (65500, 19)),  # libjpeg's
        ("PNG", (70000, 20), (70000, 20)),  # none
    ],
)
def test_a_panorama_is_scaled_to_what_the_format_can_hold(
    fmt: str, source: tuple[int, int], expected: tuple[int, int]
) -> None:
    data = encode(Image.new("RGB", source, "blue"), "PNG")
    for max_size in (None, (100_000, 100_000)):
        result = optimize_image_from_bytes(data, format=fmt, max_size=max_size)
        assert (result.width, result.height) == expected
        assert decode(result).size == expected


@pytest.mark.parametrize(
    ("source", "max_size", "decoded", "target"),
    [
        # 1600/300 = 5.3: the decoder scales by 1/4 (never below the target), not 1/1.
        ((1600, 1200), 300, (400, 300), (300, 225)),
        # The request is the aspect-correct 512x341, not the 512x512 box: 1000 // 512 would
        # be 1 and force a full decode (what Image.thumbnail's own draft does here).
        ((1500, 1000), 512, (750, 500), (512, 341)),
        ((1500, 1000), 100, (188, 125), (100, 67)),  # 1/8
        ((1500, 1000), 1000, (1500, 1000), (1000, 667)),  # less than 2x: full decode
    ],
)
def test_shrink_on_load_decodes_jpeg_at_the_needed_size(
    source: tuple[int, int],
    max_size: int,
    decoded: tuple[int, int],
    target: tuple[int, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = encode(photo(source), "JPEG", quality=90)
    with caplog.at_level(logging.DEBUG, logger="django_imagekit_storage.images"):
        result = optimize_image_from_bytes(data, max_size=max_size)
    assert (result.width, result.height) == target
    assert f"decode at {decoded[0]}x{decoded[1]} (target {target[0]}x{target[1]})" in caplog.text


def hairlines(size: tuple[int, int]) -> Image.Image:
    """Worst case for DCT-domain scaling: fine texture and 2 px diagonal lines (moire)."""
    texture = noise((size[0] // 3, size[1] // 3)).resize(size)
    image = Image.merge("RGB", [texture, *photo(size).split()[1:]])
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 37):
        draw.line((x, 0, size[0] - x, size[1]), fill=(255, 255, 0), width=2)
    return image


@pytest.mark.parametrize(("content", "raw_db"), [(photo, 38), (hairlines, 26)])
def test_resize_is_equivalent_to_a_full_lanczos(
    content: Callable[[tuple[int, int]], Image.Image], raw_db: float
) -> None:
    # The check: PSNR against a full-resolution decode + LANCZOS of the same JPEG, on lossless
    # (PNG) outputs so only the resampling differs, after a 1 px Gaussian blur (what the eye
    # resolves at 1:1; it removes the sub-pixel phase of moire, which raw PSNR punishes).
    # >= 40 dB there is visually identical; LANCZOS vs BICUBIC measures ~51 dB. Raw PSNR is
    # also bounded: >= 38 dB on photo-like content (LANCZOS vs BICUBIC: ~38 dB).
    data = encode(content((1200, 900)), "JPEG", quality=95)
    specs = {
        "main": ImageSpec(format="PNG", max_size=500),  # decoded at 1/2 scale, then LANCZOS
        "thumb": ImageSpec(format="PNG", max_size=150),  # from "main", via reduce()
    }
    results = optimize_image_variants(data, specs)
    reference = Image.open(io.BytesIO(data)).convert("RGB")
    blur = ImageFilter.GaussianBlur(1)
    for name in specs:
        result = decode(results[name])
        expected = reference.resize(result.size, Image.Resampling.LANCZOS)
        assert psnr(result.filter(blur), expected.filter(blur)) >= 40, name
        assert psnr(result, expected) >= raw_db, name


# ------------------------------------------------------------------------ orientation


ORIENT_FROM_UPRIGHT = {  # what a camera stores for an upright scene, per EXIF orientation
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def stored(orientation: int, size: tuple[int, int] = (80, 40)) -> Image.Image:
    op = ORIENT_FROM_UPRIGHT[orientation]
    upright = quadrants(size)
    return upright if op is None else upright.transpose(op)


def assert_upright(image: Image.Image) -> None:
    width, height = image.size
    assert width > height  # the upright scene is landscape
    rgb = image.convert("RGB")
    assert close(rgb.getpixel((width // 4, height // 4)), (255, 0, 0))  # type: ignore[arg-type]
    assert close(rgb.getpixel((3 * width // 4, height // 4)), (0, 255, 0))  # type: ignore[arg-type]
    assert close(rgb.getpixel((width // 4, 3 * height // 4)), (0, 0, 255))  # type: ignore[arg-type]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored(orientation, (800, 400)), "JPEG", quality=95, exif=exif.tobytes())
    result = optimize_image_from_bytes(data, format="PNG", max_size=(100, 60))
    image = decode(result)
    assert image.size == (100, 50)
    assert_upright(image)
    assert "exif" not in image.info


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_png_and_webp(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    for fmt in ["PNG", "WEBP"] + (["AVIF"] if HAS_AVIF else []):
        data = encode(stored(orientation), fmt, exif=exif.tobytes(), lossless=True, quality=100)
        assert_upright(decode(optimize_image_from_bytes(data, format="PNG")))


def test_orientation_with_a_rectangular_box_and_shrink_on_load(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A portrait-stored 800x1600 JPEG with orientation 6 is a 1600x800 landscape scene: the
    # box applies to the upright image, the draft request is made in stored axes, and the
    # rotation is applied to the small image (exif_transpose would decode at full size).
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored(6, (1600, 800)), "JPEG", quality=95, exif=exif.tobytes())
    with caplog.at_level(logging.DEBUG, logger="django_imagekit_storage.images"):
        variants = optimize_image_variants(
            data,
            {
                "main": ImageSpec(format="PNG", max_size=(400, 1000)),
                "small": ImageSpec(format="PNG", max_size=(1000, 50)),
            },
        )
    assert "decode at 200x400 (target 200x400)" in caplog.text
    assert (variants["main"].width, variants["main"].height) == (400, 200)
    assert (variants["small"].width, variants["small"].height) == (100, 50)
    for result in variants.values():
        assert_upright(decode(result))


# --------------------------------------------------------------------------- metadata


def source_with_metadata(fmt: str) -> bytes:
    exif = exif_with_gps(orientation=6)
    image = stored(6, (160, 80))
    return encode(image, fmt, exif=exif.tobytes(), xmp=XMP, quality=95)


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
@pytest.mark.parametrize("source", ["JPEG", "WEBP", "PNG"])
def test_metadata_stripped_by_default(fmt: str, source: str) -> None:
    data = source_with_metadata(source)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)  # the source has GPS
    result = optimize_image_from_bytes(data, format=fmt)
    # In no form at all, whether or not Pillow would parse it back.
    assert b"TestCam" not in result.data
    assert b"GPSLatitude" not in result.data
    image = decode(result)
    assert_upright(image)
    assert not image.getexif()
    assert "exif" not in image.info
    assert "xmp" not in image.info
    assert b"GPS" not in image.info.get("XML:com.adobe.xmp", b"")


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_keep_metadata(fmt: str) -> None:
    image = decode(
        optimize_image_from_bytes(source_with_metadata("JPEG"), format=fmt, keep_metadata=True)
    )
    exif = image.getexif()
    assert exif.get(0x010F) == "TestCam"
    assert exif.get_ifd(0x8825)[1] == "N"  # GPS kept, as asked
    assert exif.get(0x0112, 1) == 1  # already applied to the pixels
    xmp = image.info["xmp"]
    assert b"GPSLatitude" in xmp
    assert b'tiff:Orientation="1"' in xmp
    assert_upright(image)


def test_keep_metadata_from_a_tiff_leaves_its_layout_tags_out() -> None:
    # A TIFF's EXIF is its whole directory: strips, compression and size describe the source.
    data = encode(photo((64, 48)), "TIFF", compression="tiff_lzw", tiffinfo={315: "Ann Artist"})
    assert {256, 259, 273, 279} <= set(Image.open(io.BytesIO(data)).getexif())
    for fmt in ("JPEG", "WEBP"):
        result = optimize_image_from_bytes(data, format=fmt, max_size=32, keep_metadata=True)
        exif = decode(result).getexif()
        assert exif.get(315) == "Ann Artist", fmt  # the metadata is kept
        assert not {256, 257, 258, 259, 262, 273, 277, 278, 279, 284} & set(exif), fmt


def test_keep_metadata_too_big_for_a_jpeg(caplog: pytest.LogCaptureFixture) -> None:
    # A JPEG holds 64 KB of EXIF and of XMP; PNG and WEBP sources can carry more (maker
    # notes, editing histories). Pillow would raise ValueError: the JPEG is made without them.
    exif = exif_with_gps()
    exif[0x927C] = b"m" * 70_000  # MakerNote
    xmp = XMP.replace(b"</rdf:RDF>", b" " * 70_000 + b"</rdf:RDF>")
    data = encode(photo(), "WEBP", exif=exif.tobytes(), xmp=xmp)
    with caplog.at_level(logging.WARNING, logger="django_imagekit_storage.images"):
        jpeg = decode(optimize_image_from_bytes(data, format="JPEG", keep_metadata=True))
    assert not jpeg.getexif()
    assert "xmp" not in jpeg.info
    assert "EXIF of 70" in caplog.text
    assert "XMP of 70" in caplog.text
    webp = decode(optimize_image_from_bytes(data, format="WEBP", keep_metadata=True))
    assert webp.getexif().get_ifd(0x8825)[1] == "N"  # other formats keep it all
    assert len(webp.info["xmp"]) > 70_000


def test_png_text_chunks_are_not_copied() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "prompt: my secret")
    data = encode(photo(), "PNG", pnginfo=info)
    for keep in (False, True):
        image = decode(optimize_image_from_bytes(data, format="PNG", keep_metadata=keep))
        assert "parameters" not in image.info


def test_jpeg_comment_is_not_copied() -> None:
    data = encode(photo(), "JPEG", comment=b"shot at 12 Main Street")
    assert Image.open(io.BytesIO(data)).info["comment"]
    for keep in (False, True):
        image = decode(optimize_image_from_bytes(data, format="JPEG", keep_metadata=keep))
        assert "comment" not in image.info


def test_wide_gamut_profile_is_kept_byte_for_byte() -> None:
    from PIL import ImageCms

    p3 = icc_profile()
    assert "Display P3" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(p3)))
    data = encode(photo(), "JPEG", icc_profile=p3)
    for fmt in OUTPUT_FORMATS:
        for keep in (False, True):
            result = optimize_image_from_bytes(data, format=fmt, keep_metadata=keep)
            assert decode(result).info.get("icc_profile") == p3, fmt


def test_wide_gamut_profile_survives_max_bytes_quantisation() -> None:
    p3 = icc_profile()
    data = encode(photo((300, 200)), "PNG", icc_profile=p3)
    full = optimize_image_from_bytes(data, format="PNG")
    small = decode(optimize_image_from_bytes(data, format="PNG", max_bytes=full.size // 2))
    assert small.mode == "P"
    assert small.info.get("icc_profile") == p3


def test_a_huge_rgb_profile_is_applied_instead_of_copied() -> None:
    from PIL import ImageCms

    big = icc_profile(padding=200_000)
    assert len(big) > 200_000
    source = Image.new("RGBA", (64, 48), (200, 60, 40, 255))
    source.paste((200, 60, 40, 0), (0, 0, 8, 8))
    data = encode(source, "PNG", icc_profile=big)
    image = decode(optimize_image_from_bytes(data, format="PNG"))
    assert not image.info.get("icc_profile")
    expected = ImageCms.profileToProfile(
        source.convert("RGB"),
        ImageCms.ImageCmsProfile(io.BytesIO(big)),
        ImageCms.createProfile("sRGB"),
        outputMode="RGB",
    )
    assert expected is not None
    colour = cast("tuple[int, ...]", image.getpixel((32, 24)))
    assert colour[:3] == expected.getpixel((32, 24)) != (200, 60, 40)
    assert colour[3] == 255
    assert cast("tuple[int, ...]", image.getpixel((2, 2)))[3] == 0  # alpha survives


def test_srgb_profile_is_dropped_as_redundant() -> None:
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(photo(), "JPEG", icc_profile=srgb)
    assert not decode(optimize_image_from_bytes(data, format="WEBP")).info.get("icc_profile")


def test_grey_profile_kept_for_grey_outputs_only() -> None:
    grey = icc_profile(b"GRAY", "Gray Gamma 2.2 (test)")
    data = encode(photo(mode="L"), "JPEG", icc_profile=grey)
    jpeg = decode(optimize_image_from_bytes(data, format="JPEG"))
    assert jpeg.mode == "L"
    assert jpeg.info.get("icc_profile") == grey
    webp = decode(optimize_image_from_bytes(data, format="WEBP"))
    assert webp.mode == "RGB"
    assert not webp.info.get("icc_profile")  # a grey profile cannot describe RGB pixels


def test_corrupt_profile_is_dropped() -> None:
    data = encode(photo(), "JPEG", icc_profile=b"\0" * 200)
    assert not decode(optimize_image_from_bytes(data, format="PNG")).info.get("icc_profile")


# ------------------------------------------------------------------- alpha and modes


def transparent_logo() -> Image.Image:
    image = Image.new("RGBA", (100, 60), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (20, 10, 80, 50))
    image.paste((255, 0, 0, 128), (0, 0, 10, 10))
    return image


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"] + (["AVIF"] if HAS_AVIF else []))
def test_alpha_kept_where_the_format_has_it(fmt: str) -> None:
    image = decode(optimize_image_from_bytes(encode(transparent_logo(), "PNG"), format=fmt))
    assert image.mode == "RGBA"
    assert image.getpixel((95, 55))[3] == 0  # type: ignore[index]
    assert image.getpixel((50, 30))[3] == 255  # type: ignore[index]


def test_alpha_flattened_on_the_background_for_jpeg() -> None:
    data = encode(transparent_logo(), "PNG")
    image = decode(optimize_image_from_bytes(data, format="JPEG", background="#00ff00"))
    assert image.mode == "RGB"
    assert close(image.getpixel((95, 55)), (0, 255, 0))  # type: ignore[arg-type]
    assert close(image.getpixel((50, 30)), (0, 0, 255))  # type: ignore[arg-type]
    assert close(image.getpixel((3, 3)), (128, 128, 0), 50)  # type: ignore[arg-type]  # half red on green
    white = decode(optimize_image_from_bytes(data, format="JPEG"))
    assert close(white.getpixel((95, 55)), (255, 255, 255))  # type: ignore[arg-type]


def test_opaque_alpha_is_dropped() -> None:
    data = encode(photo(mode="RGBA"), "PNG")
    assert decode(optimize_image_from_bytes(data, format="WEBP")).mode == "RGB"
    assert decode(optimize_image_from_bytes(data, format="PNG")).mode == "RGB"


def test_palette_with_transparency_is_resized_smoothly() -> None:
    palette = Image.new("P", (100, 60), 0)
    palette.putpalette([0, 0, 0, 0, 0, 255])
    palette.paste(1, (20, 10, 80, 50))
    gif = encode(palette, "GIF", transparency=0)
    source = Image.open(io.BytesIO(gif))
    assert source.mode == "P"
    assert "transparency" in source.info
    image = decode(optimize_image_from_bytes(gif, format="WEBP", max_size=50))
    assert image.mode == "RGBA"
    # LANCZOS in RGBA, not nearest-neighbour in P: the blue box's edge has in-between alpha.
    alphas = {image.getpixel((x, 15))[3] for x in range(5, 15)}  # type: ignore[index]
    assert any(0 < a < 255 for a in alphas)


def test_palette_source_is_lossless_webp_while_it_has_palette_colours() -> None:
    flat = quadrants((200, 100)).quantize(4)
    data = encode(flat, "PNG")
    image = decode(optimize_image_from_bytes(data, format="WEBP", max_size=None))
    assert image.mode == "RGB"
    assert ImageChops.difference(image, flat.convert("RGB")).getbbox() is None  # lossless
    # Resized, the edges are antialiased into many colours: lossy is far smaller then.
    gif_photo = encode(photo((800, 600)).quantize(256), "GIF")
    resized = optimize_image_from_bytes(gif_photo, format="WEBP", max_size=400)
    lossless = io.BytesIO()
    decode(resized).save(lossless, "WEBP", lossless=True)
    assert resized.size < lossless.tell() / 3


def webp_is_lossless(data: bytes) -> bool:
    """Whether a WEBP file's image chunk is VP8L (lossless) rather than VP8 (lossy)."""
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    offset = 12
    while offset + 8 <= len(data):
        kind, length = (
            data[offset : offset + 4],
            int.from_bytes(data[offset + 4 : offset + 8], "little"),
        )
        if kind in (b"VP8 ", b"VP8L"):
            return kind == b"VP8L"
        offset += 8 + length + (length & 1)
    raise AssertionError("no image chunk in the WEBP file")


def flat_logo(size: int = 800) -> Image.Image:
    """What `make demo` uploads: a 2-colour RGBA PNG (not a palette PNG), a disc on clear."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    margin = size // 8
    ImageDraw.Draw(image).ellipse(
        (margin, margin, size - margin, size - margin), fill=(30, 110, 220, 255)
    )
    return image


def lossy_webp(image: Image.Image, box: int, quality: int) -> int:
    """Bytes of the plain lossy encode the optimiser made before graphics were detected."""
    if max(image.size) > box:
        image = image.resize((box, box), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return len(encode(image, "WEBP", quality=quality, method=4))


DEMO_SPECS = {
    "image": ImageSpec(format="WEBP", max_size=1600, quality=80),
    "thumbnail": ImageSpec(format="WEBP", max_size=320, quality=75),
}


def test_flat_rgba_logo_is_no_bigger_than_lossy_and_exact_while_unresized() -> None:
    logo = flat_logo()
    variants = optimize_image_variants(encode(logo, "PNG"), DEMO_SPECS)
    main, thumb = variants["image"], variants["thumbnail"]
    # Unresized, its 2 colours are stored exactly, in a fraction of the lossy bytes
    # (measured: 1,332 against 5,606).
    assert webp_is_lossless(main.data)
    assert main.size * 3 < lossy_webp(logo, 1600, 80)
    out = decode(main).convert("RGBA")
    assert _same(out.getchannel("A"), logo.getchannel("A"))
    assert out.getpixel((400, 400)) == (30, 110, 220, 255)
    # Resized, antialiasing adds ~700 colours: lossy with the alpha quantised like the colours
    # wins here (measured: 4,708 against 5,692 lossy and 5,352 lossless), and stays faithful.
    assert (thumb.width, thumb.height) == (320, 320)
    assert thumb.size < lossy_webp(logo, 320, 75) * 0.9
    smooth = logo.resize((320, 320), Image.Resampling.LANCZOS, reducing_gap=3.0)
    alpha_error = ImageChops.difference(decode(thumb).getchannel("A"), smooth.getchannel("A"))
    assert alpha_error.getextrema()[1] <= 4  # type: ignore[index]


def test_flat_logo_thumbnail_is_not_bigger_than_its_main() -> None:
    # Both resized (a 2000 px logo to 800 and 320 px): each no bigger than its lossy encode,
    # and the thumbnail no bigger than the main. (A main stored unresized and exact, as
    # above, has no antialiased edges and can be smaller than any smooth thumbnail.)
    logo = flat_logo(2000)
    specs = {"image": ImageSpec(max_size=800), "thumbnail": ImageSpec(max_size=320)}
    variants = optimize_image_variants(encode(logo, "PNG"), specs)
    main, thumb = variants["image"], variants["thumbnail"]
    assert main.size <= lossy_webp(logo, 800, 80)
    assert thumb.size <= lossy_webp(logo, 320, 80)
    assert thumb.size <= main.size


def test_antialiased_logo_keeps_the_smaller_of_lossless_and_lossy() -> None:
    # Drawn at 4x and downsampled: 3 colours with smooth edges, ~800 distinct colours.
    big = Image.new("RGBA", (3200, 1600), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    draw.ellipse((200, 200, 1400, 1400), fill=(30, 110, 220, 255))
    draw.rectangle((1600, 400, 3000, 1200), fill=(240, 120, 20, 255))
    draw.polygon([(1700, 1300), (2900, 1300), (2300, 300)], fill=(255, 255, 255, 255))
    logo = big.resize((800, 400), Image.Resampling.LANCZOS)
    data = encode(logo, "PNG")
    for box in (800, 320):
        result = optimize_image_from_bytes(data, max_size=box)
        resized = logo if box == 800 else logo.resize((320, 160), Image.Resampling.LANCZOS)
        lossy = len(encode(resized, "WEBP", quality=80, method=4))
        lossless = len(encode(resized, "WEBP", quality=80, method=4, lossless=True))
        assert result.size <= min(lossy, lossless) * 1.02  # the better of the two, or better


def screenshot_like(size: tuple[int, int] = (1200, 800)) -> Image.Image:
    """Flat panels with hard-edged, text-like boxes in 4 colours: 5 colours in all."""
    image = Image.new("RGB", size, (245, 245, 245))
    draw = ImageDraw.Draw(image)
    rng = random.Random(1)
    inks = [(20, 20, 20), (30, 110, 220), (200, 40, 40), (120, 120, 120)]
    for _ in range(size[0] * size[1] // 1200):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        box = (x, y, x + rng.randrange(4, 60), y + rng.randrange(4, 14))
        draw.rectangle(box, fill=rng.choice(inks))
    return image


def test_graphic_resized_into_many_colours_is_not_tried_lossless(
    caplog: pytest.LogCaptureFixture,
) -> None:
    image = screenshot_like()
    data = encode(image, "PNG")
    with caplog.at_level(logging.DEBUG, logger="django_imagekit_storage.images"):
        exact = optimize_image_from_bytes(data, max_size=None)
    assert webp_is_lossless(exact.data)
    assert exact.size * 5 < len(encode(image, "WEBP", quality=80, method=4))  # 5 KB vs 49
    assert "lossless 1200x800" in caplog.text
    assert "(2 encodes)" in caplog.text
    # Resized, antialiasing makes thousands of colours: lossless would be slow (10x lossy)
    # and bigger (52 KB against 31), so only the lossy encode is made.
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="django_imagekit_storage.images"):
        resized = optimize_image_from_bytes(data, max_size=500)
    assert not webp_is_lossless(resized.data)
    assert "(1 encodes)" in caplog.text
    assert "graphic" in caplog.text


def test_photos_stay_one_lossy_encode_with_exact_alpha(caplog: pytest.LogCaptureFixture) -> None:
    cut_out = photo((400, 300), "RGBA")
    cut_out.putalpha(Image.radial_gradient("L").resize((400, 300)))  # soft-edged cut-out
    inputs = {
        "jpeg": encode(photo((400, 300)), "JPEG"),
        "png": encode(photo((400, 300)), "PNG"),
        "rgba": encode(cut_out, "PNG"),
        # A flat graphic saved as JPEG is noisy: treated like any photo, without counting.
        "flat jpeg": encode(quadrants((400, 300)), "JPEG", quality=95),
    }
    for name, data in inputs.items():
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="django_imagekit_storage.images"):
            result = optimize_image_from_bytes(data)
        assert not webp_is_lossless(result.data), name
        assert "(1 encodes)" in caplog.text, name
        assert "graphic" not in caplog.text, name
    # Photos' alpha is still stored exactly (libwebp's default alpha_quality of 100).
    out = decode(optimize_image_from_bytes(inputs["rgba"])).getchannel("A")
    assert _same(out, cut_out.getchannel("A"))


def test_graphic_over_max_bytes_falls_back_to_the_lossy_search() -> None:
    data = encode(flat_logo(), "PNG")
    assert optimize_image_from_bytes(data).size > 1000  # lossless: 1,332 bytes
    result = optimize_image_from_bytes(data, max_bytes=1000)
    assert result.size <= 1000
    assert not webp_is_lossless(result.data)
    assert decode(result).mode == "RGBA"


@pytest.mark.parametrize("source", ["GIF", "PNG"])
def test_palette_source_stays_a_palette_png_when_exact(source: str) -> None:
    logo = transparent_logo().resize((400, 240))
    logo.paste((0, 200, 0, 255), (0, 100, 400, 140))
    palette = logo.quantize(16, method=Image.Quantize.FASTOCTREE)
    # GIF keeps one transparent index (that of the transparent corner) and no partial alpha.
    options = {"transparency": palette.getpixel((399, 239))} if source == "GIF" else {}
    data = encode(palette, source, **options)
    result = optimize_image_from_bytes(data, format="PNG")
    image = decode(result)
    assert image.mode == "P"
    assert _same(image.convert("RGBA"), Image.open(io.BytesIO(data)).convert("RGBA"))
    as_rgba = encode(Image.open(io.BytesIO(data)).convert("RGBA"), "PNG")
    assert result.size < len(as_rgba)
    # Resized, it is resampled smoothly (in RGBA), whatever mode it is stored in.
    small = decode(optimize_image_from_bytes(data, format="PNG", max_size=100)).convert("RGBA")
    alphas = {cast("tuple[int, ...]", small.getpixel((x, 20)))[3] for x in range(100)}
    assert any(0 < a < 255 for a in alphas)


def _same(a: Image.Image, b: Image.Image) -> bool:
    return ImageChops.difference(a, b).getbbox() is None


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("1", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("P", "BMP"), ("RGB", "TIFF"), ("RGBA", "TIFF")],
)
def test_common_modes(mode: str, fmt: str) -> None:
    data = encode(photo(mode="RGBA" if mode == "LA" else "RGB").convert(mode), fmt)
    for out in OUTPUT_FORMATS:
        result = optimize_image_from_bytes(data, format=out, max_size=100)
        assert decode(result).size == (100, 75)


@pytest.mark.parametrize("mode", ["YCbCr", "LAB"])
def test_other_tiff_modes_become_rgb(mode: str) -> None:
    data = encode(quadrants((64, 48)).convert(mode), "TIFF")
    if Image.open(io.BytesIO(data)).mode != mode:  # Pillow 12 reads YCbCr TIFFs as RGB
        pytest.skip(f"this Pillow does not read {mode} TIFFs as {mode}")
    image = decode(optimize_image_from_bytes(data, format="PNG"))
    assert image.mode == "RGB"
    assert close(image.getpixel((8, 8)), (255, 0, 0), 60)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_png_colour_key_transparency_becomes_alpha(mode: str) -> None:
    image = Image.new(mode, (40, 40), "white" if mode == "RGB" else 255)
    image.paste((0, 0, 0) if mode == "RGB" else 0, (0, 0, 20, 40))
    key = (0, 0, 0) if mode == "RGB" else 0
    data = encode(image, "PNG", transparency=key)
    result = decode(optimize_image_from_bytes(data, format="WEBP"))
    assert result.mode == "RGBA"
    assert result.getpixel((5, 20))[3] == 0  # type: ignore[index]
    assert result.getpixel((35, 20))[3] == 255  # type: ignore[index]


def test_mpo_from_a_phone_camera_uses_the_first_picture() -> None:
    frames = [quadrants((800, 400)), Image.new("RGB", (800, 400), "black")]
    exif = Image.Exif()
    exif[0x0112] = 1
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:], exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).format == "MPO"
    result = optimize_image_from_bytes(data, format="PNG", max_size=100)
    assert (result.width, result.height) == (100, 50)
    assert_upright(decode(result))


def test_la_keeps_its_alpha() -> None:
    image = transparent_logo().convert("LA")
    result = decode(optimize_image_from_bytes(encode(image, "PNG"), format="WEBP"))
    assert result.mode == "RGBA"
    assert result.getpixel((95, 55))[3] == 0  # type: ignore[index]


def test_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (64, 64), (255, 0, 0, 0))  # pure cyan
    data = encode(cmyk, "JPEG", quality=95)
    for fmt in OUTPUT_FORMATS:  # PNG cannot store CMYK: converted, not OSError
        image = decode(optimize_image_from_bytes(data, format=fmt))
        assert image.mode == "RGB"
        assert close(image.getpixel((32, 32)), (0, 255, 255))  # type: ignore[arg-type]


def test_cmyk_is_converted_through_its_embedded_profile() -> None:
    cmyk = Image.new("CMYK", (64, 64), (255, 0, 0, 0))  # cyan, which this profile calls grey
    data = encode(cmyk, "JPEG", quality=95, icc_profile=icc_profile(b"CMYK", "Test CMYK"))
    image = decode(optimize_image_from_bytes(data, format="WEBP"))
    assert image.mode == "RGB"
    red, green, blue = cast("tuple[int, int, int]", image.getpixel((32, 32)))
    assert max(red, green, blue) - min(red, green, blue) < 12  # grey, not the naive cyan
    assert 90 < red < 150
    assert not image.info.get("icc_profile")  # a CMYK profile cannot describe RGB


def test_16_bit_grey_is_scaled_not_clipped_to_white() -> None:
    image = Image.linear_gradient("L").resize((64, 64)).convert("I")
    sixteen = image.point(lambda v: v * 257).convert("I;16")  # 0..65535
    data = encode(sixteen, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    result = decode(optimize_image_from_bytes(data, format="PNG", max_size=32))
    low, high = grey_extrema(result)
    assert low < 20
    assert high > 230
    mean = ImageStat.Stat(result.convert("L")).mean[0]
    assert 100 < mean < 155  # a gradient, not a white page


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_a_dark_16_bit_image_stays_dark(fmt: str) -> None:
    # Values 0-127 of 65535: nearly black, not an 8-bit image that happens to be 16-bit.
    dark = Image.linear_gradient("L").resize((64, 64)).convert("I").point(lambda v: v * 0.5)
    data = encode(dark.convert("I;16"), fmt)
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    result = decode(optimize_image_from_bytes(data, format="PNG"))
    assert grey_extrema(result) == (0, 0)


def _png16(width: int, height: int, colour_type: int) -> bytes:
    """A 16-bit-per-channel PNG (Pillow cannot write one): a left-to-right ramp."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    rows = b""
    for _ in range(height):
        row = b"\0"  # filter: none
        for x in range(width):
            ramp = 65535 * x // (width - 1)
            pixel = [ramp, 65535 - ramp, 32768] if channels >= 3 else [ramp]
            if channels in (2, 4):
                pixel.append(40000)  # alpha ~61%
            row += b"".join(struct.pack(">H", value) for value in pixel)
        rows += row
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("colour_type", [0, 2, 4, 6])
def test_16_bit_png_of_every_colour_type(colour_type: int) -> None:
    result = decode(optimize_image_from_bytes(_png16(64, 8, colour_type), format="PNG"))
    rgba = result.convert("RGBA")
    left = cast("tuple[int, ...]", rgba.getpixel((0, 4)))
    right = cast("tuple[int, ...]", rgba.getpixel((63, 4)))
    middle = cast("tuple[int, ...]", rgba.getpixel((32, 4)))
    assert left[0] < 5
    assert right[0] > 250  # the ramp, not clipped to white
    assert 115 < middle[0] < 145
    assert abs(left[3] - (156 if colour_type in (4, 6) else 255)) < 3  # 40000 / 257


@pytest.mark.parametrize(
    ("mode", "scale"), [("I", 65535 / 255), ("I", 1000000 / 255), ("F", 1 / 255), ("F", 40.0)]
)
def test_32_bit_integer_and_float_tiffs(mode: str, scale: float) -> None:
    gradient = Image.linear_gradient("L").resize((64, 64))
    image = gradient.convert(mode).point(lambda v: v * scale)
    result = decode(optimize_image_from_bytes(encode(image, "TIFF"), format="PNG"))
    grey = result.convert("L")
    low, high = grey_extrema(grey)
    assert low < 20
    assert high > 230
    got = cast("int", grey.getpixel((0, 32)))
    expected = cast("int", gradient.getpixel((0, 32)))
    assert abs(got - expected) <= 20


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_input_gives_the_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (40, 40), color) for color in ("red", "blue", "green")]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    result = optimize_image_from_bytes(data, format="WEBP")
    image = decode(result)
    assert getattr(image, "n_frames", 1) == 1
    assert close(image.convert("RGB").getpixel((20, 20)), (255, 0, 0))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- max_bytes


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_max_bytes_by_quality_bisection(fmt: str, caplog: pytest.LogCaptureFixture) -> None:
    data = encode(photo((600, 400)), "PNG")
    full = optimize_image_from_bytes(data, format=fmt, quality=95)
    limit = full.size * 2 // 3
    with caplog.at_level(logging.DEBUG, logger="django_imagekit_storage.images"):
        result = optimize_image_from_bytes(data, format=fmt, quality=95, max_bytes=limit)
    assert result.size <= limit
    assert (result.width, result.height) == (600, 400)  # quality alone got there
    encodes = int(caplog.text.split("met after ")[1].split()[0])
    assert encodes <= 8  # bisection, not a walk down 75 quality steps
    assert result.size > limit * 0.8  # and it uses the budget (close to the best quality)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"] + (["AVIF"] if HAS_AVIF else []))
def test_max_bytes_shrinks_when_quality_is_not_enough(fmt: str) -> None:
    data = encode(photo((480, 360)), "PNG")
    result = optimize_image_from_bytes(data, format=fmt, max_bytes=1200)
    assert result.size <= 1200
    assert 16 <= result.width < 480
    assert decode(result).size == (result.width, result.height)
    assert abs(result.width / result.height - 4 / 3) < 0.1


def test_max_bytes_png_quantises_then_shrinks() -> None:
    data = encode(photo((300, 200)), "PNG")
    full = optimize_image_from_bytes(data, format="PNG")
    quantised = optimize_image_from_bytes(data, format="PNG", max_bytes=full.size * 3 // 4)
    assert quantised.size <= full.size * 3 // 4
    assert (quantised.width, quantised.height) == (300, 200)
    assert decode(quantised).mode == "P"
    shrunk = optimize_image_from_bytes(data, format="PNG", max_bytes=4000)
    assert shrunk.size <= 4000
    assert shrunk.width < 300


def test_max_bytes_keeps_transparency_in_png() -> None:
    data = encode(transparent_logo().resize((400, 240)), "PNG")
    result = decode(optimize_image_from_bytes(data, format="PNG", max_bytes=2000))
    assert result.convert("RGBA").getpixel((result.width - 1, result.height - 1))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_max_bytes_impossible(fmt: str) -> None:
    data = encode(photo((200, 150)), "PNG")
    started = time.perf_counter()
    with pytest.raises(
        MaxBytesError, match=rf"No {fmt} output of at least {MIN_SIDE} px fits in 30 bytes"
    ):
        optimize_image_from_bytes(data, format=fmt, max_bytes=30)
    assert time.perf_counter() - started < 2
    assert issubclass(MaxBytesError, ValueError)


def test_max_bytes_impossible_for_an_image_under_16_px() -> None:
    data = encode(photo((8, 6)), "PNG")
    with pytest.raises(MaxBytesError, match=r"No JPEG output even at its full 8x6 px fits in 30"):
        optimize_image_from_bytes(data, format="JPEG", max_bytes=30)


def test_max_bytes_already_met_is_one_encode(caplog: pytest.LogCaptureFixture) -> None:
    data = encode(photo((100, 80)), "PNG")
    with caplog.at_level(logging.DEBUG, logger="django_imagekit_storage.images"):
        optimize_image_from_bytes(data, max_bytes=10_000_000)
    assert "met after" not in caplog.text


def test_log_starts_with_the_bytes_given(caplog: pytest.LogCaptureFixture) -> None:
    data = encode(photo(), "JPEG")
    specs = {"main": ImageSpec(), "thumb": ImageSpec(max_size=50)}
    with caplog.at_level(logging.DEBUG, logger="django_imagekit_storage.images"):
        optimize_image_variants(data, specs)
    messages = [r.getMessage() for r in caplog.records if r.name.endswith(".images")]
    assert messages[0] == f"read {len(data)} bytes, outputs 'main', 'thumb'"
    stages = [message.split()[0] for message in messages]
    assert stages == ["read", "open", "decode", "normalise", "resize", "encode", "encode"]
    # Logged before anything can fail: the twice-read upload shows up as 0 bytes.
    caplog.clear()
    with (
        caplog.at_level(logging.DEBUG, logger="django_imagekit_storage.images"),
        pytest.raises(InvalidImageError, match="empty"),
    ):
        optimize_image_from_bytes(b"")
    assert [r.getMessage() for r in caplog.records] == ["read 0 bytes, outputs 'image'"]


# ---------------------------------------------------------------- variants, one read


def test_one_read_gives_main_and_thumbnail(monkeypatch: pytest.MonkeyPatch) -> None:
    # The bug this library exists for: reading the upload twice gives b"" the second time.
    upload = SimpleUploadedFile("photos/Cat.JPG", encode(photo((1200, 900)), "JPEG"))
    data = upload.read()
    assert upload.read() == b""  # a second read really is empty

    opened: list[object] = []
    real_open = Image.open

    def counting_open(*args: Any, **kwargs: Any) -> Image.Image:
        opened.append(args)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    variants = optimize_image_variants(
        data,
        {
            "thumb": ImageSpec(format="JPEG", max_size=300, quality=70),
            "main": ImageSpec(max_size=1024),
        },
    )
    assert len(opened) == 1  # decoded once
    assert list(variants) == ["thumb", "main"]  # the caller's order
    assert (variants["main"].width, variants["main"].height) == (1024, 768)
    assert (variants["thumb"].width, variants["thumb"].height) == (300, 225)
    assert variants["main"].as_file("photos/Cat.JPG").name == "photos/Cat.webp"
    assert variants["thumb"].as_file(str(upload.name)).name == "Cat.jpg"
    # The same bytes serve any number of further calls.
    again = optimize_image_from_bytes(data, max_size=1024)
    assert again.data == variants["main"].data


def test_variants_share_one_decode(caplog: pytest.LogCaptureFixture) -> None:
    data = encode(photo((1600, 1200)), "JPEG")
    with caplog.at_level(logging.DEBUG, logger="django_imagekit_storage.images"):
        optimize_image_variants(
            data, {"a": ImageSpec(max_size=64), "b": ImageSpec(max_size=700), "c": ImageSpec()}
        )
    assert caplog.text.count("decode at") == 1
    assert "decode at 1600x1200 (target 1600x1200)" in caplog.text  # "c" needs it all
    for stage in (
        "open",
        "decode",
        "normalise",
        "resize",
        "encode 'a'",
        "encode 'b'",
        "encode 'c'",
    ):
        assert f"{stage}" in caplog.text
    assert " ms" in caplog.text


def test_smaller_outputs_are_resized_from_the_largest(monkeypatch: pytest.MonkeyPatch) -> None:
    resizes: list[tuple[tuple[int, int], tuple[int, int]]] = []
    real_resize = Image.Image.resize

    def recording_resize(self: Image.Image, size: Any, *args: Any, **kwargs: Any) -> Image.Image:
        resizes.append((self.size, tuple(size)))
        return real_resize(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", recording_resize)
    data = encode(photo((1600, 1200)), "JPEG")  # under 2x the main: no shrink-on-load
    optimize_image_variants(
        data,
        {
            "thumb": ImageSpec(max_size=100),
            "main": ImageSpec(max_size=1000),
            "thumb-jpeg": ImageSpec(max_size=100, format="JPEG"),
        },
    )
    assert resizes.count(((1600, 1200), (1000, 750))) == 1
    # From the main, not from the full decode, and once for both 100 px outputs.
    assert resizes.count(((1000, 750), (100, 75))) == 1
    assert ((1600, 1200), (100, 75)) not in resizes
    assert ((1000, 750), (1000, 750)) not in resizes  # the main is used as it is


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("photos/Cat.JPG", "photos/Cat.webp"),
        ("Cat.jpeg", "Cat.webp"),
        ("noext", "noext.webp"),
        ("a/b.tar.gz", "a/b.tar.webp"),
        ("a.b/photo", "a.b/photo.webp"),
        (".hidden", ".hidden.webp"),
        ("trailing.", "trailing.webp"),
        ("deep/er/name.webp", "deep/er/name.webp"),
    ],
)
def test_as_file_naming(name: str, expected: str) -> None:
    result = optimize_image_from_bytes(encode(photo((20, 20)), "PNG"))
    file = result.as_file(name)
    assert file.name == expected
    assert file.read() == result.data
    assert file.size == result.size


@pytest.mark.parametrize("name", ["", "photos/", None])
def test_as_file_needs_a_name(name: str | None) -> None:
    result = optimize_image_from_bytes(encode(photo((20, 20)), "PNG"))
    with pytest.raises(ValueError, match="name must be a file name"):
        result.as_file(name)  # type: ignore[arg-type]


def test_threads_share_no_state() -> None:
    data = encode(photo((400, 300)), "JPEG")
    expected = optimize_image_from_bytes(data, max_size=200).data
    results: list[bytes] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(optimize_image_from_bytes(data, max_size=200).data)
        except BaseException as error:  # noqa: BLE001  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [expected] * 6


def test_threads_with_mixed_work_get_what_one_thread_gets() -> None:
    # Every path at once: shrink-on-load, alpha, palettes, profiles, max_bytes, refusals.
    jobs: list[tuple[bytes, dict[str, ImageSpec]]] = [
        (
            encode(photo((900, 600)), "JPEG"),
            {"m": ImageSpec(max_size=300), "t": ImageSpec(max_size=50)},
        ),
        (
            encode(transparent_logo(), "PNG"),
            {"j": ImageSpec(format="JPEG"), "p": ImageSpec(format="PNG")},
        ),
        (encode(photo().quantize(64), "GIF"), {"w": ImageSpec(max_size=None)}),
        (encode(photo(), "JPEG", icc_profile=icc_profile()), {"w": ImageSpec(max_bytes=3000)}),
        (_tiff_with_a_damaged_tag(), {"w": ImageSpec()}),  # refused: warnings are errors here
        (b"not an image", {"w": ImageSpec()}),
    ]

    def run(job: tuple[bytes, dict[str, ImageSpec]]) -> dict[str, bytes] | str:
        try:
            return {name: out.data for name, out in optimize_image_variants(*job).items()}
        except InvalidImageError as error:
            return str(error)

    expected = [run(job) for job in jobs]
    results: dict[int, list[dict[str, bytes] | str]] = {}

    def worker(index: int) -> None:
        shift = index % len(jobs)  # each thread in its own order
        order = list(range(len(jobs)))[shift:] + list(range(len(jobs)))[:shift]
        got = {i: run(jobs[i]) for i in order}
        results[index] = [got[i] for i in range(len(jobs))]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6  # no thread died
    for got in results.values():
        assert got == expected


def test_pillow_globals_are_left_alone() -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    optimize_image_from_bytes(encode(photo(), "JPEG"), max_pixels=10**9)
    with pytest.raises(InvalidImageError):
        optimize_image_from_bytes(encode(photo(), "JPEG")[:500])
    assert before == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)


# ----------------------------------------------------------------------- hostile input


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _png(width: int, height: int, idat: bytes | None) -> bytes:
    header = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    )
    if idat is None:
        return header
    return header + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _zlib_zeros(row: int, rows: int) -> bytes:
    compressor = zlib.compressobj(1)  # fast to build; level 9 would be ~1000:1
    block = b"\0" * row * 100
    return b"".join(compressor.compress(block) for _ in range(rows // 100)) + compressor.flush()


def _jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16), "red"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


_JPEG = encode(photo((64, 48)), "JPEG")
_PNG = encode(photo((64, 48)), "PNG")

HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty": (lambda: b"", "empty"),
    "random bytes": (lambda: random.Random(5).randbytes(4096), "not an image"),
    "text": (lambda: b"hello, world\n" * 10, "not an image"),
    "truncated JPEG": (lambda: _JPEG[: len(_JPEG) // 2], "JPEG .*truncated"),
    "truncated PNG": (lambda: _PNG[: len(_PNG) // 2], "PNG .*truncated"),
    "header-only JPEG": (
        lambda: _JPEG[: _JPEG.index(b"\xff\xda")],
        "JPEG .*(truncated|incomplete)",  # found at open or at load, by Pillow version
    ),
    "header-only PNG": (lambda: _png(64, 48, None), "PNG .*incomplete"),
    "PNG bomb (declared 400 MP)": (
        lambda: _png(20000, 20000, zlib.compress(b"\0" * 64)),
        "too large",
    ),
    "PNG bomb (real, 50.4 MP of zeros)": (
        lambda: _png(7100, 7100, _zlib_zeros(7101, 7100)),
        "50.4 megapixels",
    ),
    "JPEG declaring 65500x65500": (lambda: _jpeg_declaring(65500, 65500), "too large"),
    "JPEG declaring 60000x1000": (lambda: _jpeg_declaring(60000, 1000), "60000x1000"),
    "zero-size PNG": (lambda: _png(0, 10, zlib.compress(b"\0")), "PNG"),
    "zero-size GIF": (
        lambda: b"GIF89a\0\0\0\0\0\0\0,\0\0\0\0\0\0\0\0\0\x02\x02D\x01\0;",
        "GIF",
    ),
    "SVG": (lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    "HEIC": (lambda: b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(200), "HEIC"),
    "EPS (Ghostscript)": (
        lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n",
        "not accepted",
    ),
    "ICO (decoder not allowed)": (
        lambda: encode(Image.new("RGB", (16, 16)), "ICO"),
        "not an image",
    ),
    "PCX (decoder not allowed)": (
        lambda: encode(Image.new("RGB", (16, 16)), "PCX"),
        "not an image",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_is_refused_quickly(case: str) -> None:
    make, match = HOSTILE[case]
    data = make()
    started = time.perf_counter()
    with pytest.raises(InvalidImageError, match=match):
        optimize_image_variants(data, {"main": ImageSpec(), "thumb": ImageSpec(max_size=100)})
    assert time.perf_counter() - started < 0.5
    assert issubclass(InvalidImageError, ValueError)


# Pillow warns about some damage (TIFF and EXIF tags) and carries on: with the warnings shown
# or made errors (this project's setting), the outcome is an image or an InvalidImageError.
@pytest.mark.parametrize("warnings_as", ["error", "ignore"])
def test_damaged_images_raise_only_invalid_image_error(warnings_as: str) -> None:
    # A small deterministic fuzz: flipped bytes, truncations and insertions in valid files of
    # every accepted format. Each must decode or raise InvalidImageError, nothing else.
    warnings.simplefilter(warnings_as)  # pytest restores the filters after each test
    sources = [
        encode(photo((64, 48)), "JPEG"),
        encode(transparent_logo(), "PNG"),
        encode(photo((64, 48)).quantize(32), "GIF"),
        encode(photo((64, 48)), "WEBP"),
        encode(photo((64, 48)), "TIFF", compression="tiff_lzw"),
        encode(photo((32, 24)), "BMP"),
    ] + ([encode(photo((64, 48)), "AVIF")] * 2 if HAS_AVIF else [])
    specs = {"main": ImageSpec(max_size=40), "thumb": ImageSpec(format="JPEG", max_size=10)}
    rng = random.Random(20261201)
    for _ in range(400):
        data = bytearray(rng.choice(sources))
        roll = rng.random()
        if roll < 0.5:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif roll < 0.8:
            del data[rng.randrange(1, len(data)) :]
        else:
            at = rng.randrange(len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        with contextlib.suppress(InvalidImageError):
            optimize_image_variants(bytes(data), specs)


def _tiff_with_a_damaged_tag() -> bytes:
    """A TIFF whose Artist tag points past the end of the file (the pixels are intact)."""
    tiff = bytearray(encode(photo((32, 24)), "TIFF", tiffinfo={315: "an artist, over 4 bytes"}))
    (ifd,) = struct.unpack("<I", tiff[4:8])
    (count,) = struct.unpack("<H", tiff[ifd : ifd + 2])
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack("<H", tiff[entry : entry + 2]) == (315,):
            tiff[entry + 8 : entry + 12] = struct.pack("<I", len(tiff) - 5)
            return bytes(tiff)
    raise AssertionError("no Artist tag written")


def test_a_pillow_warning_raised_as_an_error_is_an_invalid_image_error() -> None:
    # This project's pytest setting, and a common one: warnings are errors.
    with pytest.raises(InvalidImageError, match=r"The TIFF is truncated or .*corrupt .*upload"):
        optimize_image_from_bytes(_tiff_with_a_damaged_tag())


@pytest.mark.filterwarnings("default::UserWarning")
def test_a_pillow_warning_shown_lets_the_image_through() -> None:
    # Warnings not made errors: Pillow skips the damaged tag, the pixels are fine.
    with pytest.warns(UserWarning, match="Truncated File Read"):
        result = optimize_image_from_bytes(_tiff_with_a_damaged_tag(), format="PNG")
    assert (result.width, result.height) == (32, 24)


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_pillow_own_limit_is_named_in_the_message() -> None:
    with pytest.raises(InvalidImageError, match=r"upload a smaller image .*MAX_IMAGE_PIXELS"):
        optimize_image_from_bytes(_png(20000, 20000, zlib.compress(b"\0" * 64)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc needed")
@pytest.mark.parametrize(
    "case", ["PNG bomb (declared 400 MP)", "PNG bomb (real, 50.4 MP of zeros)"]
)
def test_bombs_make_no_large_allocation(case: str) -> None:
    data = HOSTILE[case][0]()
    before = _peak_rss_kib()
    with pytest.raises(InvalidImageError):
        optimize_image_from_bytes(data)
    # The process's all-time peak resident memory did not move: no 50-400 MB buffer.
    assert _peak_rss_kib() - before < 16 * 1024


def test_max_pixels_is_checked_before_decoding() -> None:
    data = encode(photo((100, 100)), "PNG")
    with pytest.raises(
        InvalidImageError,
        match=r"100x100 \(10,000 pixels\), over the limit of 9,999 pixels \(max_pixels\); "
        r"refused before decoding: upload a smaller image, or raise max_pixels",
    ):
        optimize_image_from_bytes(data, max_pixels=9999)
    big = _jpeg_declaring(10000, 6000)
    with pytest.raises(InvalidImageError, match=r"\(60\.0 megapixels\), over .* 50\.0 megapixels"):
        optimize_image_from_bytes(big)
    assert optimize_image_from_bytes(data, max_pixels=10000).width == 100
    assert DEFAULT_MAX_PIXELS == 50_000_000
