"""delivery.py against the real imagekitio SDK helper, and signatures checked independently."""

from __future__ import annotations

import hashlib
import hmac
import random
import subprocess
import sys
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
from imagekitio import ImageKit
from imagekitio.lib import helper as sdk_helper

from django_imagekit_storage import delivery
from django_imagekit_storage.delivery import (
    SIGNATURE_WINDOW_SECONDS,
    TRANSFORMATION_KEYS,
    build_url,
    signature_expiry,
    transformation_string,
)

KEY = "private_test_key"

ENDPOINTS = [
    "https://ik.imagekit.io/demo",
    "https://ik.imagekit.io/demo/",
    "https://ik.imagekit.io/demo/nested/deeper",
    "https://images.example.com",
    "https://images.example.com/",
    "http://127.0.0.1:8765/demo",
    "http://localhost:8000",
    "HTTPS://Images.Example.com/Demo",
    "https://ik.imagekit.io/demo;params",
    "https://ik.imagekit.io/demo?v=1",
    "https://ik.imagekit.io/demo?tr=old&v=2&v=3&blank=",
    "https://user:pw@cdn.example.com:8443/x",
    "https://[::1]:8080/demo",
]

PATHS = [
    "a.jpg",
    "media/photo_Ab3dE9xQz.jpg",
    "/leading.jpg",
    "trailing/",
    "//double//slashes//x.png",
    "a b/c d.jpg",
    "café/naïve résumé.png",
    "日本語/写真.jpg",
    "emoji/\U0001f600.webp",
    "100%/50% off.jpg",
    "q?uery#frag.jpg",
    "sub-delims/!$&'()*+,;=.jpg",
    "unreserved/-._~.jpg",
    "gen-delims/:@.jpg",
    'others/"<>\\^`{|}[].jpg',
    "tab\tnew\nline.jpg",
    "plus+sign and space.jpg",
    "%2F already encoded %41.jpg",
    "/",
    "///",
    "x",
    "dir.with.dots/file.tar.gz",
    "http_like/https_x.jpg",
]

TRANSFORMATIONS: list[list[dict[str, object]]] = [
    [],
    [{}],
    [{"width": 300}],
    [{"w": 300, "h": 200}],
    [{"width": 300, "height": 200}, {"rotation": 90}],
    [{"width": 300.0, "height": 200.5, "quality": 80}],
    [{"width": "300", "crop": "maintain_ratio", "format": "auto"}],
    [{"width": None, "height": 100}],
    [{"width": ""}, {"height": "  "}, {}],
    [{"grayscale": True}, {"contrast_stretch": "true"}, {"ai_upscale": False}],
    [{"grayscale": "-"}, {"ai_remove_background": "yes"}],
    [{"sharpen": True, "shadow": "", "gradient": "ld-180", "unsharp_mask": "2-2-0.8-0.024"}],
    [{"ai_drop_shadow": True, "ai_edit": "make it blue"}],
    [{"default_image": "/folder/default.jpg/", "font_family": "/fonts/x.ttf"}],
    [{"streaming_resolutions": [240, 360, 1080]}],
    [{"trim": ""}, {"trim": True}, {"trim": 5}],
    [{"progressive": True, "lossless": False, "original": True}],
    [{"raw": "w-100,h-100"}, {"raw": "   "}, {"raw": 5}],
    [{"dpr": "auto", "focus": "face", "x": 10, "y": 20, "x_center": 1, "y_center": 2}],
    [{"background": "FF0000", "border": "5_FFF000", "radius": "max", "blur": 10}],
    [{"custom-key": "v", "another": 1}],
    [{"aspect_ratio": "4-3", "crop_mode": "extract", "named": "thumb", "flip": "h"}],
    [{"zoom": 0.5, "opacity": 0, "page": 2, "density": 300, "metadata": True}],
    [{"overlay": {"type": "text", "text": "Hello world"}}],
    [{"overlay": {"type": "text", "text": "Héllo, wörld!?", "encoding": "auto"}}],
    [{"overlay": {"type": "text", "text": "plain text/x", "encoding": "plain"}}],
    [{"overlay": {"type": "text", "text": "b64", "encoding": "base64"}}],
    [{"overlay": {"type": "text", "text": ""}}],
    [
        {
            "overlay": {
                "type": "image",
                "input": "/logos/logo.png",
                "position": {"x": 10, "y": 0, "focus": "center"},
                "timing": {"start": 2.0, "end": 5.5, "duration": 3},
                "transformation": [{"width": 50}, {"rotation": 90}],
                "layerMode": "multiply",
            }
        }
    ],
    [{"overlay": {"type": "image", "input": "weird name+é.png"}}],
    [{"overlay": {"type": "image", "input": "x.png", "encoding": "base64"}}],
    [{"overlay": {"type": "video", "input": "clip.mp4", "position": {"xCenter": 5}}}],
    [{"overlay": {"type": "subtitle", "input": "subs.srt", "layer_mode": "displace"}}],
    [{"overlay": {"type": "solidColor", "color": "FF0000", "position": {"anchor_point": "top"}}}],
    [{"overlay": {"type": "solidColor", "color": ""}}],
    [{"overlay": {"type": "image"}}],
    [{"overlay": {"type": ""}}],
    [{"overlay": {"type": "unknown", "position": {"yCenter": 3}}}],
    [{"overlay": "not a dict"}],
    [{"width": 100, "overlay": {"type": "text", "text": "x", "transformation": []}}],
    [{"font_size": 20, "font_color": "FFF", "inner_alignment": "left", "padding": 5}],
    [{"alpha": 5, "typography": "b", "line_height": 10, "font_outline": "2_000"}],
    [{"font_shadow": "000_2", "color": "FFF", "color_replace": "FF0000_5"}],
]


@pytest.fixture(scope="module")
def sdk() -> ImageKit:
    # Never used for HTTP: the helper builds URLs locally.
    client = ImageKit(private_key=KEY, base_url="http://127.0.0.1:9", max_retries=0)
    yield client
    client.close()


def sdk_url(sdk: ImageKit, endpoint: str, path: str, transformation=None, **kwargs) -> str:
    options: dict[str, object] = {"src": path, "url_endpoint": endpoint}
    if transformation is not None:
        options["transformation"] = transformation
    options.update(kwargs)
    return sdk.helper.build_url(**options)


def random_paths(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = (
        "abcXYZ019_-.~/ /!$&'()*+,;=:@%?#[]\"<>\\^`{|}\t"
        "éüßçñ日本語写真Ωж\u00a0\u200b\U0001f600\U0001f9d1\u200d\U0001f4bb"
    )
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(count)]


def test_transformation_keys_are_the_sdks_table() -> None:
    assert dict(TRANSFORMATION_KEYS) == sdk_helper.SUPPORTED_TRANSFORMS
    assert TRANSFORMATION_KEYS["width"] == "w"
    with pytest.raises(TypeError):
        TRANSFORMATION_KEYS["width"] = "x"  # type: ignore[index]


@pytest.mark.parametrize("transformation", TRANSFORMATIONS)
def test_transformation_string_matches_sdk(sdk: ImageKit, transformation) -> None:
    assert transformation_string(transformation) == sdk.helper.build_transformation_string(
        transformation
    )


def test_transformation_string_examples() -> None:
    assert transformation_string([{"width": 300, "height": 200}, {"rotation": 90}]) == (
        "w-300,h-200:rt-90"
    )
    assert transformation_string([{"w": 300, "q": 80}]) == "w-300,q-80"
    assert transformation_string(None) == ""
    assert transformation_string([]) == ""


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unsigned_urls_match_sdk_for_every_path(sdk: ImageKit, endpoint: str) -> None:
    for path in PATHS:
        assert build_url(endpoint, path) == sdk_url(sdk, endpoint, path), (endpoint, path)


@pytest.mark.parametrize("transformation", TRANSFORMATIONS)
def test_unsigned_urls_with_transformations_match_sdk(sdk: ImageKit, transformation) -> None:
    for endpoint in ENDPOINTS:
        for path in ("media/a b.jpg", "x.png", "é/ü.jpg"):
            ours = build_url(endpoint, path, transformation=transformation)
            assert ours == sdk_url(sdk, endpoint, path, transformation), (endpoint, path)


def test_random_paths_match_sdk(sdk: ImageKit) -> None:
    transformations = [None, [{"width": 320}], [{"w": 640, "format": "auto"}, {"q": 70}]]
    for index, path in enumerate(random_paths(1500, seed=9)):
        transformation = transformations[index % 3]
        for endpoint in ("https://ik.imagekit.io/demo", "http://127.0.0.1:5000/x/"):
            ours = build_url(endpoint, path, transformation=transformation)
            assert ours == sdk_url(sdk, endpoint, path, transformation), (endpoint, path)


def test_empty_path_is_empty_url_as_in_sdk(sdk: ImageKit) -> None:
    assert build_url("https://ik.imagekit.io/demo", "") == sdk_url(
        sdk, "https://ik.imagekit.io/demo", ""
    )
    assert build_url("https://ik.imagekit.io/demo", "") == ""


def test_documented_shape() -> None:
    assert (
        build_url(
            "https://ik.imagekit.io/demo",
            "media/café au lait.jpg",
            transformation=[{"width": 300, "height": 200}, {"rotation": 90}],
        )
        == "https://ik.imagekit.io/demo/media/caf%C3%A9%20au%20lait.jpg?tr=w-300,h-200:rt-90"
    )


def test_lone_surrogate_is_an_error_like_the_sdk(sdk: ImageKit) -> None:
    with pytest.raises(UnicodeEncodeError):
        sdk_url(sdk, "https://ik.imagekit.io/demo", "bad\ud800.jpg")
    with pytest.raises(UnicodeEncodeError):
        build_url("https://ik.imagekit.io/demo", "bad\ud800.jpg")


# --- signing ----------------------------------------------------------------------------


def verify(url: str, endpoint: str, key: str, now: float) -> int:
    """An independent check of ImageKit's scheme: returns the expiry, asserts the signature."""
    assert url.startswith(endpoint.rstrip("/") + "/")
    rest = url[len(endpoint.rstrip("/")) + 1 :]
    params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    signature = params["ik-s"]
    assert rest.endswith("ik-s=" + signature)
    if "ik-t" in params:
        expiry = int(params["ik-t"])
        marker = f"ik-t={expiry}&ik-s={signature}"
    else:
        expiry = 9999999999
        marker = f"ik-s={signature}"
    unsigned = rest[: -len(marker) - 1]  # without the "?" or "&" before ik-t/ik-s
    expected = hmac.new(key.encode(), f"{unsigned}{expiry}".encode(), hashlib.sha1).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert expiry >= now
    return expiry


@pytest.mark.parametrize("path", ["media/a.jpg", "café/ü b.png", "x/y/z+1.jpg"])
@pytest.mark.parametrize("transformation", [None, [{"width": 300}, {"rotation": 90}]])
def test_signed_url_verifies_and_lasts_at_least_expire(path, transformation) -> None:
    endpoint = "https://ik.imagekit.io/demo"
    now = 1_800_000_123.4
    for expire in (1, 59, 60, 600, 899, 900, 901, 3600, 86400):
        url = build_url(
            endpoint,
            path,
            transformation=transformation,
            signed=True,
            private_key=KEY,
            expire_seconds=expire,
            now=now,
        )
        expiry = verify(url, endpoint, KEY, now)
        assert expiry >= now + expire
        assert expiry <= now + expire + min(SIGNATURE_WINDOW_SECONDS, expire) + 1
        assert url.startswith(build_url(endpoint, path, transformation=transformation))


def test_signed_url_equals_sdk_for_the_same_expiry(
    sdk: ImageKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = 1_800_000_000.0
    for endpoint in ("https://ik.imagekit.io/demo", "http://127.0.0.1:8765/demo/sub/"):
        for path in PATHS[:12]:
            for transformation in (None, [{"width": 320, "format": "auto"}]):
                ours = build_url(
                    endpoint,
                    path,
                    transformation=transformation,
                    signed=True,
                    private_key=KEY,
                    expire_seconds=3600,
                    now=now,
                )
                expiry = signature_expiry(3600, now)
                # Make the SDK pick the same expiry: its clock reads expiry - 100, then + 100.
                monkeypatch.setattr(
                    sdk_helper, "time", SimpleNamespace(time=lambda e=expiry: e - 100)
                )
                theirs = sdk_url(sdk, endpoint, path, transformation, signed=True, expires_in=100)
                assert ours == theirs, (endpoint, path)


def test_non_expiring_signed_url_equals_sdk(sdk: ImageKit) -> None:
    for endpoint in ("https://ik.imagekit.io/demo", "https://ik.imagekit.io/demo/"):
        for path in PATHS:
            for transformation in (None, [{"w": 100}]):
                ours = build_url(
                    endpoint, path, transformation=transformation, signed=True, private_key=KEY
                )
                assert "ik-t" not in ours
                assert ours == sdk_url(sdk, endpoint, path, transformation, signed=True)
                if path.strip("/"):  # "/" alone is the endpoint itself: nothing after it
                    verify(ours, endpoint, KEY, 0)


def test_signed_urls_are_identical_within_the_window() -> None:
    endpoint, path = "https://ik.imagekit.io/demo", "media/a.jpg"
    # Just after a window boundary: every render in the next 15 minutes shares one expiry.
    start = signature_expiry(3600, 1_800_000_000.0) - 3600 + 0.5
    urls = {
        build_url(endpoint, path, signed=True, private_key=KEY, expire_seconds=3600, now=start + t)
        for t in range(0, SIGNATURE_WINDOW_SECONDS - 1, 7)
    }
    assert len(urls) == 1
    later = build_url(
        endpoint,
        path,
        signed=True,
        private_key=KEY,
        expire_seconds=3600,
        now=start + SIGNATURE_WINDOW_SECONDS,
    )
    assert later not in urls


def test_expire_implies_signing_as_in_the_sdk() -> None:
    url = build_url("https://ik.imagekit.io/demo", "a.jpg", private_key=KEY, expire_seconds=60)
    assert "ik-t=" in url
    assert "ik-s=" in url


def test_signature_depends_on_key_path_and_transformation() -> None:
    endpoint, now = "https://ik.imagekit.io/demo", 1_800_000_000.0

    def sig(path: str, key: str = KEY, transformation=None) -> str:
        return build_url(
            endpoint,
            path,
            transformation=transformation,
            private_key=key,
            expire_seconds=600,
            now=now,
        )

    assert sig("a.jpg") != sig("b.jpg")
    assert sig("a.jpg") != sig("a.jpg", key="other")
    assert sig("a.jpg") != sig("a.jpg", transformation=[{"w": 10}])


@pytest.mark.parametrize("expire", [0, -5, True])
def test_non_positive_expiry_is_refused(expire) -> None:
    with pytest.raises(ValueError, match="positive"):
        build_url("https://ik.imagekit.io/demo", "a.jpg", private_key=KEY, expire_seconds=expire)


@pytest.mark.parametrize("key", [None, ""])
def test_signing_needs_a_key(key) -> None:
    with pytest.raises(ValueError, match="private key"):
        build_url("https://ik.imagekit.io/demo", "a.jpg", signed=True, private_key=key)


def test_key_never_appears_in_the_url() -> None:
    url = build_url(
        "https://ik.imagekit.io/demo", "a.jpg", signed=True, private_key=KEY, expire_seconds=60
    )
    assert KEY not in url


def test_signature_expiry_rounding() -> None:
    assert signature_expiry(900, now=0) == 900
    assert signature_expiry(900, now=0.5) == 1800
    assert signature_expiry(3600, now=100) == 4500
    assert signature_expiry(60, now=100) == 180  # short expiries use their own length as window
    assert signature_expiry(1, now=10.2) == 12


def test_delivery_imports_no_sdk_and_no_django_settings() -> None:
    code = (
        "import sys\n"
        "from django_imagekit_storage import delivery\n"
        "delivery.build_url('https://ik.imagekit.io/demo', 'a.jpg', signed=True, private_key='k')\n"
        "bad = [m for m in ('imagekitio', 'httpx', 'PIL', 'django.conf') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_caches_are_bounded() -> None:
    assert delivery._base_url.cache_info().maxsize
    assert delivery._signature.cache_info().maxsize
    assert delivery._endpoint.cache_info().maxsize
