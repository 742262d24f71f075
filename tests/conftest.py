from __future__ import annotations

import os

import pytest

# Variables that would point the SDK or the storage at a developer's real account.
_ACCOUNT_ENV_PREFIXES = ("IMAGEKIT_", "IMAGE_KIT_", "OPTIONAL_IMAGEKIT_")


def pytest_configure(config: pytest.Config) -> None:
    # tox passes none of these; this guards plain `pytest` runs too.
    for name in list(os.environ):
        if name.startswith(_ACCOUNT_ENV_PREFIXES):
            del os.environ[name]
