"""`make demo`: what the library can show so far.

The example project (upload page, gallery, the diagnose report) arrives with the storage and
the stand-in server; until then the demo shows the option table resolving a configuration
the way the storage will.
"""

from __future__ import annotations

import sys

import django
from django.conf import settings


def main() -> int:
    settings.configure(
        IMAGEKIT_PRIVATE_KEY="private_demo_not_a_real_key",
        IMAGEKIT_URL_ENDPOINT="https://ik.imagekit.io/demo/",
    )
    django.setup()

    from django.core.exceptions import ImproperlyConfigured

    from django_imagekit_storage.conf import resolve_options

    resolved = resolve_options({"location": "/media/", "private_files": True}, environ={})
    print("Resolved storage options (keys hidden):")
    print(f"  {resolved!r}")
    try:
        resolve_options({"privat_key": "x"}, environ={})
    except ImproperlyConfigured as error:
        print("A typo in OPTIONS is an error that names the fix:")
        print(f"  {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
