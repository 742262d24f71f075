"""responsive.py: the helpers, on Django's own storages (fallback rules) and pure parts."""

from __future__ import annotations

import pytest
from django.core.files.storage import FileSystemStorage
from django.utils.safestring import mark_safe

from django_imagekit_storage import responsive
from tests.responsive_models import Photo


def photo(name: str = "a.jpg", width: int | None = 800, height: int | None = 600) -> Photo:
    return Photo(image=name, image_width=width, image_height=height, plain=name, document=name)


def test_normalize_accepts_long_names_short_codes_and_one_mapping() -> None:
    assert responsive.normalize_transformation({"w": 300, "quality": 80}) == [
        {"width": 300, "quality": 80}
    ]
    assert responsive.normalize_transformation([{"h": 1}, {"rt": 90}]) == [
        {"height": 1},
        {"rotation": 90},
    ]
    assert responsive.normalize_transformation(None) == []
    overlay = {"overlay": {"type": "text", "text": "hi"}}
    assert responsive.normalize_transformation(overlay) == [overlay]


def test_normalize_rejects_unknown_key_naming_the_closest() -> None:
    with pytest.raises(ValueError, match=r"'widht'.*Did you mean 'width'"):
        responsive.normalize_transformation({"widht": 3})


def test_normalize_rejects_the_same_transformation_twice() -> None:
    with pytest.raises(ValueError, match="'width' is given twice"):
        responsive.normalize_transformation({"w": 3, "width": 4})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("320,640,1280", (320, 640, 1280)),
        ("640, 320 320", (320, 640)),
        ("320w 640w", (320, 640)),
        ([640, "320"], (320, 640)),
        (480, (480,)),
    ],
)
def test_parse_widths(given, expected) -> None:
    assert responsive.parse_widths(given) == expected


@pytest.mark.parametrize("given", ["", "a", "0", "-5", "3.5", [True], [0], 2.5, None, ","])
def test_parse_widths_rejects(given) -> None:
    with pytest.raises(ValueError, match="widths"):
        responsive.parse_widths(given)


@pytest.mark.parametrize("empty", [None, "", Photo().image, Photo(image="").plain])
def test_empty_values_give_nothing(empty) -> None:
    assert responsive.image_url(empty, {"w": 300}) == ""
    assert responsive.srcset(empty, "320,640") == ""
    assert responsive.image_data(empty) is None
    assert responsive.img_html(None) == ""


def test_wrong_type_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="FieldFile"):
        responsive.image_url(42)


def test_fallback_storage_gives_plain_url_and_no_srcset() -> None:
    image = photo("dir/a b.jpg").image
    assert responsive.image_url(image, {"w": 300, "q": 50}) == "/media/dir/a%20b.jpg"
    assert responsive.srcset(image, "320,640", {"w": 300}) == ""
    assert responsive.image_data(image, widths="320,640", transformation={"w": 400}) == {
        "url": "/media/dir/a%20b.jpg",
        "srcset": "",
        "sizes": "",
        # the browser scales the original to the requested width, aspect ratio kept
        "width": 400,
        "height": 300,
    }


def test_fallback_without_transformation_uses_the_model_sizes() -> None:
    data = responsive.image_data(photo().image)
    assert data is not None
    assert (data["width"], data["height"]) == (800, 600)


def test_sizes_unknown_without_dimension_fields_and_the_file_is_never_read() -> None:
    # "missing.jpg" is not in the storage: reading it would raise.
    instance = Photo(plain="missing.jpg", document="missing.pdf")
    data = responsive.image_data(instance.plain, transformation={"w": 300})
    assert data is not None
    assert data["url"] == "/media/missing.jpg"
    assert (data["width"], data["height"]) == (300, None)
    assert responsive.image_data(instance.document)["url"] == "/media/missing.pdf"


def test_name_strings_use_the_default_storage(settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    settings.MEDIA_URL = "/uploads/"
    assert responsive.image_url("x y.png", {"w": 10}) == "/uploads/x%20y.png"


def test_other_storage_instance_falls_back() -> None:
    instance = photo()
    instance.image.storage = FileSystemStorage(base_url="/fs/")
    assert responsive.image_url(instance.image, {"w": 3}) == "/fs/a.jpg"


def test_img_html_escapes_values_but_trusts_safe_strings() -> None:
    data: responsive.ImageData = {
        "url": "https://x/a.jpg?tr=w-1&ik-s=1",
        "srcset": "https://x/a.jpg?tr=w-1&ik-s=1 1w",
        "sizes": "50vw",
        "width": 10,
        "height": 5,
    }
    html = responsive.img_html(
        data,
        {"alt": '"><script>', "class": mark_safe("a&b"), "id": None, "hidden": True},
    )
    assert html == (
        '<img src="https://x/a.jpg?tr=w-1&amp;ik-s=1" srcset="https://x/a.jpg?tr=w-1&amp;ik-s=1 1w"'
        ' sizes="50vw" width="10" height="5" alt="&quot;&gt;&lt;script&gt;" class="a&b" hidden>'
    )
    unescaped = responsive.img_html(data, {"alt": "<b>"}, autoescape=False)
    assert 'alt="<b>"' in unescaped
    assert "&amp;ik-s" in unescaped  # our URLs stay valid HTML either way


def test_img_html_defaults_alt_and_leaves_out_unknown_sizes() -> None:
    data: responsive.ImageData = {
        "url": "/a.jpg",
        "srcset": "",
        "sizes": "",
        "width": None,
        "height": None,
    }
    assert responsive.img_html(data) == '<img src="/a.jpg" alt="">'
    # A nullable caption: still an (empty) alt, so screen readers do not read out the URL.
    assert responsive.img_html(data, {"alt": None}) == '<img src="/a.jpg" alt="">'
    assert responsive.img_html(data, {"alt": False, "id": None}) == '<img src="/a.jpg" alt="">'


def test_closest_key() -> None:
    assert responsive.closest_transformation_key("qualty") == "quality"
    assert responsive.closest_transformation_key("zzzzzz") is None
    assert responsive.closest_transformation_key("clas", ["class"]) == "class"
    assert responsive.closest_transformation_key("overlai") == "overlay"
    assert responsive.closest_transformation_key("overlai", exclude=["overlay"]) is None


@pytest.mark.parametrize("name", ['a"b', "on click", "", "x>"])
def test_img_html_refuses_bad_attribute_names(name) -> None:
    data = responsive.image_data("a.jpg")
    with pytest.raises(ValueError, match="not an HTML attribute name"):
        responsive.img_html(data, {name: "x"})


@pytest.mark.parametrize("name", ["src", "srcset", "sizes", "width", "HEIGHT"])
def test_img_html_refuses_attributes_that_come_from_the_data(name) -> None:
    # Written twice, the browser would silently keep the first one.
    data = responsive.image_data(photo().image)
    with pytest.raises(ValueError, match=r"comes from the image data: set it through image_data"):
        responsive.img_html(data, {name: "1"})


def test_height_alone_keeps_the_aspect_ratio_on_fallback() -> None:
    data = responsive.image_data(photo().image, transformation={"h": 300, "w": None})
    assert (data["width"], data["height"]) == (400, 300)
    unknown = responsive.image_data(Photo(plain="a.jpg").plain, transformation={"h": 300})
    assert (unknown["width"], unknown["height"]) == (None, 300)


def test_aspect_ratio_transformation_gives_the_height() -> None:
    data = responsive.image_data(photo().image, transformation={"w": 400, "ar": "16-9"})
    assert (data["width"], data["height"]) == (400, 225)


@pytest.mark.parametrize("width", [0.5, "iw_div_2", "auto"])
def test_relative_or_computed_width_gives_no_size(width) -> None:
    data = responsive.image_data(photo().image, transformation={"w": width})
    assert (data["width"], data["height"]) == (None, None)
