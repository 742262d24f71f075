"""``{% load imagekit_storage %}``: ImageKit URLs, ``srcset`` values and ``<img>`` elements.

Arguments are checked when the template compiles: transformation keys may be the SDK's long
names (``width``) or ImageKit's short codes (``w``); anything else is a ``TemplateSyntaxError``
naming the closest valid key. Rendering never touches the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import template
from django.template.base import FilterExpression, Node, Variable, kwarg_re
from django.utils.html import conditional_escape

from django_imagekit_storage import responsive

if TYPE_CHECKING:
    from django.template.base import Parser, Token
    from django.template.context import Context
    from django.utils.safestring import SafeString

register = template.Library()

# Arguments that are not transformations, per tag.
_URL_OPTIONS = frozenset({"expire"})
_SRCSET_OPTIONS = frozenset({"expire", "widths"})
#: HTML attributes ``imagekit_img`` writes as given (``alt`` defaults to ``""``).
IMG_ATTRIBUTES = (
    "alt",
    "class",
    "id",
    "title",
    "style",
    "loading",
    "decoding",
    "fetchpriority",
    "referrerpolicy",
    "crossorigin",
    "role",
)
_IMG_OPTIONS = frozenset({"expire", "widths", "sizes", *IMG_ATTRIBUTES})


def _literal(expression: FilterExpression) -> tuple[bool, object]:
    """(True, value) when ``expression`` is a plain template literal, else (False, None)."""
    if expression.filters:
        return False, None
    var = expression.var
    if not isinstance(var, Variable):
        return True, var  # a string constant, already resolved (and marked safe)
    if var.lookups is None and not var.translate:
        return True, var.literal
    return False, None


def _check_expire(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise ValueError(f"expire must be a whole number of seconds, not {value!r}.")
    seconds = int(value)
    if seconds <= 0:
        raise ValueError(f"expire must be a positive number of seconds, not {value!r}.")
    return seconds


class _ImageKitNode(Node):
    def __init__(
        self,
        tag: str,
        value: FilterExpression,
        transformation: dict[str, FilterExpression],
        options: dict[str, FilterExpression],
        target: str | None,
    ) -> None:
        self.tag = tag
        self.value = value
        self.transformation = transformation
        self.options = options
        self.target = target

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.tag}>"

    def option(self, name: str, context: Context) -> object:
        expression = self.options.get(name)
        return None if expression is None else expression.resolve(context)

    def steps(self, context: Context) -> list[dict[str, object]]:
        step = {key: expr.resolve(context) for key, expr in self.transformation.items()}
        return [step] if step else []

    def output(self, context: Context) -> str:
        raise NotImplementedError

    def render(self, context: Context) -> str:
        text = self.output(context)
        if self.target:
            context[self.target] = text
            return ""
        return conditional_escape(text) if context.autoescape else text


class ImageKitURLNode(_ImageKitNode):
    def output(self, context: Context) -> str:
        return responsive.image_url(
            self.value.resolve(context),
            self.steps(context),
            expire=_check_expire(self.option("expire", context)),
        )


class ImageKitSrcsetNode(_ImageKitNode):
    def output(self, context: Context) -> str:
        return responsive.srcset(
            self.value.resolve(context),
            self.option("widths", context),
            self.steps(context),
            expire=_check_expire(self.option("expire", context)),
        )


class ImageKitImgNode(_ImageKitNode):
    def render(self, context: Context) -> SafeString:
        sizes = self.option("sizes", context)
        data = responsive.image_data(
            self.value.resolve(context),
            widths=self.option("widths", context),
            sizes=None if sizes is None or sizes == "" else str(sizes),
            transformation=self.steps(context),
            expire=_check_expire(self.option("expire", context)),
        )
        attrs = {
            name: self.options[name].resolve(context)
            for name in IMG_ATTRIBUTES
            if name in self.options
        }
        return responsive.img_html(data, attrs, autoescape=context.autoescape)


def _parse(
    parser: Parser, token: Token, options_allowed: frozenset[str], *, allow_as: bool
) -> tuple[
    str, FilterExpression, dict[str, FilterExpression], dict[str, FilterExpression], str | None
]:
    bits = token.split_contents()
    tag = bits[0]
    target = None
    if allow_as and len(bits) >= 4 and bits[-2] == "as":
        target = bits[-1]
        bits = bits[:-2]
    if len(bits) < 2 or kwarg_re.match(bits[1])[1]:  # type: ignore[index]
        raise template.TemplateSyntaxError(
            f"{tag} needs the file first, e.g. {{% {tag} photo.image w=400 %}}."
        )
    value = parser.compile_filter(bits[1])
    transformation: dict[str, FilterExpression] = {}
    options: dict[str, FilterExpression] = {}
    given: dict[str, str] = {}  # long name -> the key as written
    for bit in bits[2:]:
        match = kwarg_re.match(bit)
        key = match[1] if match else None
        if not match or not key:
            raise template.TemplateSyntaxError(
                f"{tag} takes key=value arguments after the file; got {bit!r}."
            )
        expression = parser.compile_filter(match[2])
        if key in options_allowed:
            if key in options:
                raise template.TemplateSyntaxError(f"{tag}: {key!r} is given twice.")
            options[key] = expression
            continue
        try:
            long = responsive.transformation_key(key)
        except KeyError:
            long = None
        if long is None or long == "overlay":
            message = responsive.unknown_key_message(key, options_allowed, tag=tag)
            raise template.TemplateSyntaxError(f"{tag}: {message}") from None
        if long in transformation:
            raise template.TemplateSyntaxError(
                f"{tag}: {given[long]!r} and {key!r} both set the {long!r} transformation."
            )
        transformation[long] = expression
        given[long] = key
    _check_literals(tag, options)
    return tag, value, transformation, options, target


def _check_literals(tag: str, options: dict[str, FilterExpression]) -> None:
    # Literal values are checked now, so a typo fails when the template compiles.
    checks = {"widths": responsive.parse_widths, "expire": _check_expire}
    for name, check in checks.items():
        if name not in options:
            continue
        is_literal, value = _literal(options[name])
        if is_literal:
            try:
                check(value)
            except ValueError as error:
                raise template.TemplateSyntaxError(f"{tag}: {error}") from None


@register.tag("imagekit_url")
def imagekit_url(parser: Parser, token: Token) -> ImageKitURLNode:
    """``{% imagekit_url photo.image w=400 h=300 [expire=600] [as var] %}``"""
    return ImageKitURLNode(*_parse(parser, token, _URL_OPTIONS, allow_as=True))


@register.tag("imagekit_srcset")
def imagekit_srcset(parser: Parser, token: Token) -> ImageKitSrcsetNode:
    """``{% imagekit_srcset photo.image widths="320,640,1280" [q=80 ...] [as var] %}``"""
    return ImageKitSrcsetNode(*_parse(parser, token, _SRCSET_OPTIONS, allow_as=True))


@register.tag("imagekit_img")
def imagekit_img(parser: Parser, token: Token) -> ImageKitImgNode:
    """``{% imagekit_img photo.image widths="320,640" sizes="50vw" alt=photo.title %}``"""
    return ImageKitImgNode(*_parse(parser, token, _IMG_OPTIONS, allow_as=False))
