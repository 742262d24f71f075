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
from imagekitio import ImageKit

from django_imagekit_storage import responsive
from tests.helpers import render, start_tags
from tests.responsive_models import Photo


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


@pytest.mark.parametrize("name", ["x'><script>alert(1)</script>.jpg", 'a"b&c <d>.jpg'])
def test_hostile_file_names_stay_inside_their_attribute(imagekit_storage, name) -> None:
    photo = photo_on(imagekit_storage, name)
    html = render("{% imagekit_img p.image widths='320,640' alt=p.image.name %}", p=photo)
    elements = start_tags(html)
    assert [tag for tag, _ in elements] == ["img"]
    attrs = elements[0][1]
    assert set(attrs) == {"src", "srcset", "sizes", "width", "height", "alt"}
    assert attrs["src"] == responsive.image_url(photo.image, {"w": 640})
    assert sorted(srcset_urls(attrs["srcset"])) == [320, 640]
    assert attrs["alt"] == name


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


def test_a_plain_file_field_works_like_an_image_field(imagekit_storage, imagekit_server) -> None:
    # A FileField's FieldFile has no dimension fields: URLs as for an image, sizes unknown.
    photo = Photo(document="docs/scan.jpg")
    photo.document.storage = imagekit_storage
    url = render("{% imagekit_url p.document w=300 %}", p=photo)
    assert url == sdk_url(imagekit_server, "docs/scan.jpg", [{"width": 300}])
    html = render("{% imagekit_img p.document w=300 %}", p=photo)
    assert f'src="{url}"' in html
    assert 'width="300"' not in html  # the height is unknown, so neither is written


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


def test_empty_dimension_fields_cost_the_tags_nothing(imagekit_storage, imagekit_server) -> None:
    name = imagekit_storage.save("photos/a.jpg", ContentFile(jpeg(), name="a.jpg"))
    photo = Photo(image_width=None, image_height=None)
    photo.image.storage = imagekit_storage
    photo.image.name = name  # not through the descriptor, which would measure the file
    imagekit_server.clear_requests()
    html = render("{% imagekit_img p.image w=32 %}{% imagekit_img p.image %}", p=photo)
    assert imagekit_server.requests == []  # the file is never read to find its size
    assert " width=" not in html  # unknown: left out
    assert html.count("<img ") == 2


def test_django_measures_the_file_when_an_instance_has_empty_dimension_fields(
    imagekit_storage, imagekit_server, monkeypatch
) -> None:
    # What docs/templates.md warns about: Django's ImageField (not the tags) downloads the
    # file from ImageKit when an instance is created with empty width/height fields.
    name = imagekit_storage.save("photos/a.jpg", ContentFile(jpeg((64, 48)), name="a.jpg"))
    monkeypatch.setattr(Photo._meta.get_field("image"), "storage", imagekit_storage)
    imagekit_server.clear_requests()
    filled = Photo(image=name, image_width=64, image_height=48)
    assert imagekit_server.requests == []
    empty = Photo(image=name, image_width=None, image_height=None)
    assert imagekit_server.count("delivery") == 1
    assert (empty.image_width, empty.image_height) == (64, 48)  # measured, now filled
    assert render("{% imagekit_img p.image %}", p=filled) == render(
        "{% imagekit_img p.image %}", p=empty
    )


@pytest.mark.parametrize("width", [0.5, "iw_div_2"])
def test_relative_width_is_kept_and_gets_no_srcset(imagekit_storage, width) -> None:
    photo = photo_on(imagekit_storage)
    data = responsive.image_data(photo.image, transformation={"w": width, "q": 50})
    assert data["url"].endswith(f"?tr=w-{width},q-50")
    assert data["srcset"] == ""
    assert (data["width"], data["height"]) == (None, None)
    assert responsive.srcset(photo.image, transformation={"w": width}) == ""


@pytest.mark.parametrize(
    "transformation",
    [
        {"w": 300, "rt": 90},  # ImageKit swaps width and height
        {"w": 300, "raw": "w-100"},
        {"w": 300, "dpr": 2},
        {"w": 300, "t": 10},
        [{"w": 300}, {"w": 100}],  # a chained step resizes again
    ],
)
def test_no_size_is_claimed_when_imagekit_may_change_it(imagekit_storage, transformation) -> None:
    # A wrong width/height distorts the image; without them the browser uses the real size.
    data = responsive.image_data(photo_on(imagekit_storage).image, transformation=transformation)
    assert (data["width"], data["height"]) == (None, None)
    assert data["sizes"] == "300px"
    assert "w-300" in data["url"]
    assert data["srcset"]


@pytest.mark.parametrize(
    "transformation",
    [{"w": 300, "q": 80, "f": "auto", "rt": 0}, {"w": 300, "bl": 5, "grayscale": True}],
)
def test_size_neutral_transformations_keep_the_size(imagekit_storage, transformation) -> None:
    data = responsive.image_data(photo_on(imagekit_storage).image, transformation=transformation)
    assert (data["width"], data["height"]) == (300, 225)


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
