"""The docs agree with the code where a reader relies on them most: options and loggers."""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType

import pytest

from django_imagekit_storage.conf import OPTIONS, Option

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "django_imagekit_storage"


def option_rows() -> dict[str, list[list[str]]]:
    """The rows of the options table of configuration.md, by option name."""
    rows: dict[str, list[list[str]]] = {}
    for line in (DOCS / "configuration.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0]) if len(cells) == 5 else None
        if match:
            rows.setdefault(match.group(1), []).append(cells)
    return rows


def shown_default(option: Option) -> str:
    if option.required:
        return "required"
    if option.name == "signed_urls":
        return "`= private_files`"  # None here means "follow private_files"
    default = option.default
    if isinstance(default, MappingProxyType):
        default = dict(default)
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default!r}`".replace("'", '"')


def test_every_option_is_documented_once() -> None:
    rows = option_rows()
    assert set(rows) == set(OPTIONS)
    assert {name: len(found) for name, found in rows.items() if len(found) != 1} == {}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_option_row_matches_the_option_table(name: str) -> None:
    option = OPTIONS[name]
    (row,) = option_rows()[name]
    _, setting, environment, default, _meaning = row
    assert setting == (f"`{option.setting}`" if option.setting else "-")
    assert environment == (f"`{option.setting}`" if option.env else "-")
    assert default == shown_default(option)


def test_the_reliability_page_states_the_default_deadlines() -> None:
    text = (DOCS / "reliability.md").read_text(encoding="utf-8")
    for name in ("timeout", "upload_timeout"):
        seconds = shown_default(OPTIONS[name]).strip("`")
        assert re.search(rf"\| `{name}` \| `{seconds}` s \|", text), name


def test_every_logger_is_documented() -> None:
    text = (DOCS / "logging.md").read_text(encoding="utf-8")
    for path in SRC.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for found in re.findall(r"getLogger\((__name__|\"[\w.]+\")\)", source):
            name = found.strip('"')
            if name == "__name__":
                name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
            assert f"`{name}`" in text, f"{path.name}: logger {name} is not in logging.md"
