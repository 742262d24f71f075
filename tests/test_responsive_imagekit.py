"""The tags and helpers on the real ImageKitStorage, the SDK and the stand-in server.

URLs are compared with the imagekitio SDK's own helper, signed ones are fetched from the
stand-in server (which checks signatures independently), and rendering many images is shown
to make no network call at all.
"""

from __future__ import annotations

import io
import re
import urllib.error
import urllib.request
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.template import Context, Engine
from imagekitio import ImageKit

from django_imagekit_storage import responsive
from tests.responsive_models import Photo

engine = Engine(
    libraries={"imagekit_storage": "django_imagekit_storage.templatetags.imagekit_storage"}
)


def render(source: str, **context: object) -> str:
    return engine.from_string("{% load imagekit_storage %}" + source).render(Context(context))


def photo_on(storage, name: str = "photos/kitten_Ab3dE9xQz.jpg", size=(1600, 1200)) -> Photo:
    photo = Photo(image=name, image_width=size[0], image_height=size[1])
    photo.image.storage = storage
    return photo


def sdk_url(server, path: str, transformation=None) -> str:
    client = ImageKit(private_key=server.private_key, base_url=server.base_url, max_retries=0)
    try:
        options: dict[str, object] = {"src": path, "url_endpoint": server.url_endpoint}
        if transformation:
            options["transformation"] = transformation
        return client.helper.build_url(**options)
    finally:
        client.close()


def jpeg(size=(64, 48)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def srcset_urls(value: str) -> dict[int, str]:
    urls = {}
    for candidate in value.split(", "):
        url, _, width = candidate.rpartition(" ")
        urls[int(width.removesuffix("w"))] = url
    return urls


def test_url_equals_the_sdk_helper(imagekit_storage, imagekit_server) -> None:
    photo = photo_on(imagekit_storage, "photos/café au lait.jpg")
    url = render("{% imagekit_url p.image w=400 h=300 c='maintain_ratio' f='auto' q=80 %}", p=photo)
    expected = sdk_url(
        imagekit_server,
        "photos/café au lait.jpg",
        [{"width": 400, "height": 300, "crop": "maintain_ratio", "format": "auto", "quality": 80}],
    )
    assert url == expected
    long_names = render(
        "{% imagekit_url p.image width=400 height=300 crop='maintain_ratio' format='auto' quality=80 %}",
        p=photo,
    )
    assert long_names == expected


def test_the_documented_example(imagekit_storage, imagekit_server) -> None:
    photo = photo_on(imagekit_storage)
    html = render(
        '{% imagekit_img p.image widths="320,640,1280" sizes="(max-width: 700px) 100vw, 700px" '
        'q=80 alt=title loading="lazy" %}',
        p=photo,
        title="A kitten",
    )
    base = imagekit_server.url_endpoint + "/photos/kitten_Ab3dE9xQz.jpg"
    assert html == (
        f'<img src="{base}?tr=w-1280,q-80" srcset="{base}?tr=w-320,q-80 320w, '
        f'{base}?tr=w-640,q-80 640w, {base}?tr=w-1280,q-80 1280w" '
        'sizes="(max-width: 700px) 100vw, 700px" width="1280" height="960" alt="A kitten" '
        'loading="lazy">'
    )


def test_srcset_candidates_keep_the_crop_ratio_and_skip_upscaling(imagekit_storage) -> None:
    photo = photo_on(imagekit_storage, size=(1000, 500))
    value = render("{% imagekit_srcset p.image widths='200,400,2000' w=100 h=100 %}", p=photo)
    urls = srcset_urls(value)
    assert sorted(urls) == [200, 400]  # 2000 > the 1000 px original
    assert urls[200].endswith("?tr=w-200,h-200")
    assert urls[400].endswith("?tr=w-400,h-400")


def test_img_with_a_fixed_width_gets_1x_and_2x(imagekit_storage) -> None:
    html = render("{% imagekit_img p.image w=300 %}", p=photo_on(imagekit_storage))
    assert 'src="' in html
    assert re.search(r'src="[^"]*\?tr=w-300"', html)
    assert "w-300 300w" in html
    assert "w-600 600w" in html
    assert 'sizes="300px" width="300" height="225"' in html


def test_name_strings_use_the_default_storage(imagekit_settings) -> None:
    url = render("{% imagekit_url name w=10 %}", name="a/b.jpg")
    assert url == sdk_url(imagekit_settings, "a/b.jpg", [{"width": 10}])


def test_location_is_part_of_the_url(imagekit_storage_factory, imagekit_server) -> None:
    storage = imagekit_storage_factory(location="media")
    url = responsive.image_url(photo_on(storage, "a.jpg").image, {"w": 5})
    assert url == sdk_url(imagekit_server, "media/a.jpg", [{"width": 5}])


def test_signed_urls_are_accepted_by_the_server(imagekit_storage_factory, imagekit_server) -> None:
    storage = imagekit_storage_factory(private_files=True)
    name = storage.save("private/photo.jpg", ContentFile(jpeg(), name="photo.jpg"))
    photo = photo_on(storage, name, size=(64, 48))
    imagekit_server.clear_requests()
    html = render("{% imagekit_img p.image widths='32,64' alt='x' %}", p=photo)
    assert imagekit_server.requests == []
    src = unescape(re.search(r'src="([^"]+)"', html)[1])
    candidates = srcset_urls(unescape(re.search(r'srcset="([^"]+)"', html)[1]))
    assert sorted(candidates) == [32, 64]
    for url in [src, *candidates.values()]:
        query = parse_qs(urlsplit(url).query)
        assert "ik-s" in query
        assert "ik-t" in query
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
            assert response.read() == imagekit_server.files["/" + name].data
    # Tampering with the transformation breaks the signature.
    forged = candidates[32].replace("w-32", "w-33")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(forged, timeout=5)
    info.value.close()
    assert info.value.code == 401


def test_expire_signs_and_bounds_the_lifetime(imagekit_storage, imagekit_server) -> None:
    import time

    before = time.time()
    url = render("{% imagekit_url p.image w=10 expire=120 %}", p=photo_on(imagekit_storage))
    query = parse_qs(urlsplit(unescape(url)).query)
    expiry = int(query["ik-t"][0])
    assert before + 120 <= expiry <= time.time() + 2 * 120 + 1
    assert "&amp;ik-s=" in url  # escaped as HTML requires


def test_rendering_100_images_makes_no_network_call(
    imagekit_storage_factory, imagekit_server
) -> None:
    public = imagekit_storage_factory()
    signed = imagekit_storage_factory(signed_urls=True)
    photos = [photo_on(public, f"p/{i}.jpg") for i in range(50)]
    photos += [photo_on(signed, f"s/{i}.jpg") for i in range(50)]
    imagekit_server.clear_requests()
    html = render(
        "{% for p in photos %}{% imagekit_img p.image widths='320,640' alt=p.image.name %}"
        "{% imagekit_url p.image w=10 %}{% imagekit_srcset p.image %}{% endfor %}",
        photos=photos,
    )
    assert html.count("<img ") == 100
    assert imagekit_server.requests == []


@pytest.mark.parametrize("width", [0.5, "iw_div_2"])
def test_relative_width_is_kept_and_gets_no_srcset(imagekit_storage, width) -> None:
    photo = photo_on(imagekit_storage)
    data = responsive.image_data(photo.image, transformation={"w": width, "q": 50})
    assert data["url"].endswith(f"?tr=w-{width},q-50")
    assert data["srcset"] == ""
    assert (data["width"], data["height"]) == (None, None)
    assert responsive.srcset(photo.image, transformation={"w": width}) == ""


def test_height_alone(imagekit_storage) -> None:
    known = responsive.image_data(photo_on(imagekit_storage).image, transformation={"h": 300})
    assert known["url"].endswith("?tr=w-400,h-300")
    assert (known["width"], known["height"]) == (400, 300)
    assert "w-800,h-600 800w" in known["srcset"]
    unknown = Photo(plain="a.jpg")
    unknown.plain.storage = imagekit_storage
    data = responsive.image_data(unknown.plain, transformation={"h": 300})
    assert data["url"].endswith("?tr=h-300")
    assert data["srcset"] == ""
    assert (data["width"], data["height"]) == (None, 300)
