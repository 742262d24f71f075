"""The installed package: importable with nothing configured, typed, versioned once."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from importlib import metadata, resources

import pytest

import django_imagekit_storage


def test_import_configures_nothing_and_loads_no_sdk() -> None:
    # A fresh interpreter with no DJANGO_SETTINGS_MODULE: importing must not touch
    # settings, the network, the ImageKit SDK or Pillow.
    code = (
        "import sys, django_imagekit_storage as pkg, django_imagekit_storage.conf, "
        "django_imagekit_storage.exceptions, django_imagekit_storage.apps\n"
        "from django.conf import settings\n"
        "assert not settings.configured\n"
        "heavy = [m for m in ('imagekitio', 'PIL', 'httpx') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print(pkg.__version__)\n"
    )
    env = {"PATH": "", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == django_imagekit_storage.__version__


def test_version_is_single_sourced() -> None:
    assert metadata.version("django-imagekit-storage") == django_imagekit_storage.__version__


def test_ships_py_typed() -> None:
    assert resources.files("django_imagekit_storage").joinpath("py.typed").is_file()


def test_every_public_name_resolves() -> None:
    for name in django_imagekit_storage.__all__:
        assert getattr(django_imagekit_storage, name) is not None
    assert set(dir(django_imagekit_storage)) >= set(django_imagekit_storage.__all__)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NotAThing"):
        django_imagekit_storage.NotAThing  # type: ignore[attr-defined]  # noqa: B018


def test_lazy_exports_match_all() -> None:
    assert set(django_imagekit_storage._EXPORTS) | {"__version__"} == set(
        django_imagekit_storage.__all__
    )


def test_app_config_label() -> None:
    from django.apps import apps

    config = apps.get_app_config("django_imagekit_storage")
    assert type(config).__qualname__ == "ImageKitStorageConfig"
    assert config.name == "django_imagekit_storage"


def test_the_wheel_holds_the_package_only() -> None:
    # tox installs the built wheel: its RECORD lists exactly what the wheel shipped.
    distribution = metadata.distribution("django-imagekit-storage")
    direct_url = json.loads(distribution.read_text("direct_url.json") or "{}")
    if direct_url.get("dir_info", {}).get("editable"):
        pytest.skip("an editable install has no wheel contents to inspect")
    shipped = {path.as_posix() for path in distribution.files or ()}
    top_levels = {path.split("/", 1)[0] for path in shipped}
    assert {name for name in top_levels if not name.endswith(".dist-info")} == {
        "django_imagekit_storage"
    }
    assert "django_imagekit_storage/py.typed" in shipped
    assert "django_imagekit_storage/testing/server.py" in shipped
    assert not [path for path in shipped if "conftest" in path or "/tests/" in path]


def test_every_module_imports_without_settings_or_warnings() -> None:
    # The pytest plugin (and the package with it) is imported before pytest installs its
    # warning filters, so -W error here is what catches a deprecation at import time.
    code = (
        "import importlib, pkgutil, django_imagekit_storage as pkg\n"
        "from django.conf import settings\n"
        "names = [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert not settings.configured\n"
        "print(len(names))\n"
    )
    env = {"PATH": "", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-I", "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 10


def test_deprecation_warnings_fail_the_tests() -> None:
    # pyproject's filterwarnings = ["error"]: a deprecation from our code fails its test.
    with pytest.raises(DeprecationWarning, match="old API"):
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    with pytest.raises(PendingDeprecationWarning):
        warnings.warn("soon", PendingDeprecationWarning, stacklevel=1)


def test_tox_passes_no_account_variables() -> None:
    # tox gives the tests a minimal environment; a pass_env pattern matching these would let
    # a developer's real account reach them (tests/conftest.py also clears them).
    import configparser
    import fnmatch
    from pathlib import Path

    tox_ini = Path(__file__).parents[1] / "tox.ini"
    if not tox_ini.is_file():
        pytest.skip("tox.ini is not next to the tests (an installed test run)")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tox_ini)
    patterns = [
        pattern.strip()
        for section in parser.sections()
        for line in parser.get(section, "pass_env", fallback="").splitlines()
        for pattern in line.split(",")
        if pattern.strip()
    ]
    assert patterns, "tox.ini should list what it passes"
    for variable in (
        "IMAGEKIT_PRIVATE_KEY",
        "IMAGE_KIT_BASE_URL",
        "OPTIONAL_IMAGEKIT_IGNORES_THIS",
    ):
        leaking = [p for p in patterns if fnmatch.fnmatchcase(variable, p.upper())]
        assert not leaking, f"tox.ini passes {variable} through {leaking}"
