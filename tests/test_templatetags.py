"""The imagekit_storage template tags: parsing, escaping and fallbacks on Django's storages."""

from __future__ import annotations

import pytest
from django.template import Context, TemplateSyntaxError

from tests.helpers import engine, render, start_tags
from tests.responsive_models import Photo


@pytest.fixture(autouse=True)
def media_url(settings) -> None:
    settings.MEDIA_URL = "/media/"


def compile_error(source: str) -> str:
    with pytest.raises(TemplateSyntaxError) as info:
        engine.from_string("{% load imagekit_storage %}" + source)
    return str(info.value)


def test_library_loads_by_name_in_the_project(settings) -> None:
    from django.template import engines

    template = engines["django"].from_string(
        "{% load imagekit_storage %}{% imagekit_url name w=1 %}"
    )
    assert template.render({"name": "a.jpg"}).endswith("a.jpg")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% imagekit_url p.image widht=3 %}", "Did you mean 'width'"),
        ("{% imagekit_url p.image qualty=3 %}", "Did you mean 'quality'"),
        ("{% imagekit_url p.image zzzzzzzz=3 %}", "Unknown argument 'zzzzzzzz'."),
        ("{% imagekit_img p.image clas='x' %}", "Did you mean 'class'"),
        ("{% imagekit_img p.image overlay=x %}", "'overlay' is a nested mapping"),
        ("{% imagekit_url p.image w=3 width=4 %}", "'w' and 'width' both set the 'width'"),
        ("{% imagekit_img p.image alt='a' alt='b' %}", "'alt' is given twice"),
        ("{% imagekit_srcset p.image widths='320,x' %}", "got 'x'"),
        ("{% imagekit_img p.image widths='' %}", "widths is empty"),
        ("{% imagekit_url p.image expire=0 %}", "positive"),
        ("{% imagekit_url p.image expire='soon' %}", "whole number of seconds"),
        ("{% imagekit_url %}", "needs the file first"),
        ("{% imagekit_url w=3 %}", "needs the file first"),
        ("{% imagekit_url p.image 300 %}", "key=value"),
        ("{% imagekit_img p.image as x %}", "key=value"),
    ],
)
def test_errors_at_compile_time(source: str, expected: str) -> None:
    assert expected in compile_error(source)


def test_unknown_argument_message_lists_the_tags_own_arguments() -> None:
    message = compile_error("{% imagekit_img p.image foo=1 %}")
    assert "imagekit_img's own (alt, class," in message
    assert "short codes" in message


def test_a_template_is_never_told_to_use_a_key_it_cannot_take() -> None:
    # "overlay" is valid in the Python helpers only: suggesting it would lead to another error.
    message = compile_error("{% imagekit_url p.image overlai=1 %}")
    assert "Unknown argument 'overlai'." in message
    assert "overlay" not in message.replace("'overlai'", "")


def test_variables_are_not_checked_until_render() -> None:
    template = engine.from_string("{% load imagekit_storage %}{% imagekit_img p widths=ws %}")
    with pytest.raises(ValueError, match="widths"):
        template.render(Context({"p": "a.jpg", "ws": "bad"}))


def test_short_and_long_names_render_alike_on_fallback() -> None:
    p = Photo(image="a.jpg", image_width=800, image_height=600)
    short = render('{% imagekit_img p.image w=400 q=80 c="maintain_ratio" %}', p=p)
    long = render('{% imagekit_img p.image width=400 quality=80 crop="maintain_ratio" %}', p=p)
    assert short == long == '<img src="/media/a.jpg" width="400" height="300" alt="">'


def test_fallback_url_and_srcset() -> None:
    p = Photo(image="dir/ü.jpg", image_width=800, image_height=600)
    assert render("{% imagekit_url p.image w=300 %}", p=p) == "/media/dir/%C3%BC.jpg"
    assert render("[{% imagekit_srcset p.image widths='320,640' %}]", p=p) == "[]"


def test_empty_field_renders_nothing() -> None:
    p = Photo()
    source = (
        "[{% imagekit_url p.image w=3 %}|{% imagekit_srcset p.image %}|"
        "{% imagekit_img p.image alt='x' %}|{% imagekit_url missing %}]"
    )
    assert render(source, p=p) == "[|||]"


def test_as_variable() -> None:
    source = "{% imagekit_url name w=3 as u %}<a href='{{ u }}'>{{ u }}</a>"
    assert render(source, name="a&b.jpg") == "<a href='/media/a%26b.jpg'>/media/a%26b.jpg</a>"


def test_variables_escaped_literals_trusted() -> None:
    p = Photo(image="a.jpg", image_width=8, image_height=6)
    html = render(
        '{% imagekit_img p.image alt=title class="x&y" title=title loading="lazy" %}',
        p=p,
        title='"><script>alert(1)</script>',
    )
    assert html == (
        '<img src="/media/a.jpg" width="8" height="6" '
        'alt="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" class="x&y" '
        'title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" loading="lazy">'
    )


def test_alt_from_a_variable_that_is_none_is_still_written() -> None:
    p = Photo(image="a.jpg", image_width=8, image_height=6)
    html = render("{% imagekit_img p.image alt=caption %}", p=p, caption=None)
    assert html == '<img src="/media/a.jpg" width="8" height="6" alt="">'


def test_autoescape_off_is_respected_for_variables() -> None:
    p = Photo(image="a.jpg", image_width=8, image_height=6)
    html = render(
        "{% autoescape off %}{% imagekit_img p.image alt=title %}{% endautoescape %}",
        p=p,
        title="<b>",
    )
    assert html == '<img src="/media/a.jpg" width="8" height="6" alt="<b>">'


def test_url_output_is_escaped_like_a_variable() -> None:
    # Django's storages leave "'" in URLs (filepath_to_uri): in HTML it must be escaped.
    assert render("{% imagekit_url name %}", name="a'b.jpg") == "/media/a&#x27;b.jpg"
    assert render("{% imagekit_url name as u %}{{ u }}", name="a'b.jpg") == "/media/a&#x27;b.jpg"
    off = "{% autoescape off %}{% imagekit_url name %}{% endautoescape %}"
    assert render(off, name="a'b.jpg") == "/media/a'b.jpg"


@pytest.mark.parametrize("name", ["x'><script>alert(1)</script>.jpg", 'a"b&c.jpg'])
def test_hostile_file_names_stay_inside_their_attribute(name) -> None:
    p = Photo(image=name, image_width=8, image_height=6)
    html = render("{% imagekit_img p.image alt=p.image.name %}", p=p)
    elements = start_tags(html)
    assert [tag for tag, _ in elements] == ["img"]
    attrs = elements[0][1]
    assert attrs["src"] == p.image.url
    assert attrs["alt"] == name
    assert set(attrs) == {"src", "width", "height", "alt"}


def test_variable_transformation_values() -> None:
    p = Photo(image="a.jpg", image_width=800, image_height=600)
    html = render("{% imagekit_img p.image w=size h=none %}", p=p, size=200, none=None)
    assert 'width="200" height="150"' in html


def test_names_with_hyphenated_codes_use_long_names() -> None:
    # e-grayscale cannot be a template keyword; its long name can.
    assert render("{% imagekit_url name grayscale=True %}", name="a.jpg") == "/media/a.jpg"


def test_tags_on_other_storages_do_not_import_the_sdk() -> None:
    # A project still on FileSystemStorage pays nothing for the tags: no SDK, no httpx.
    import subprocess
    import sys

    code = (
        "import sys, django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['django_imagekit_storage'], MEDIA_URL='/m/',\n"
        "    TEMPLATES=[{'BACKEND': 'django.template.backends.django.DjangoTemplates',\n"
        "                'APP_DIRS': True}])\n"
        "django.setup()\n"
        "from django.template import engines\n"
        "t = engines['django'].from_string(\n"
        "    '{% load imagekit_storage %}{% imagekit_img n w=3 %}{% imagekit_url n %}')\n"
        "out = t.render({'n': 'a.jpg'})\n"
        'assert out == \'<img src="/m/a.jpg" alt="">/m/a.jpg\', out\n'
        "bad = [m for m in ('imagekitio', 'httpx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
