"""Made-up ImageKit keys for tests.

They have the shape of real keys (prefix, ~30 characters of base64), so redaction is tested
on realistic input; they are assembled here so that secret scanners, which look for that
shape in source files, do not report test data as a leaked key.
"""

from __future__ import annotations


def fake_key(kind: str, body: str) -> str:
    """``fake_key("private", "Ab3...=")`` -> ``"private_Ab3...="``."""
    return f"{kind}_{body}"
