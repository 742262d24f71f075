#!/usr/bin/env python
"""The example project's manage.py.

With no IMAGEKIT_* environment variables it starts the stand-in ImageKit server first (see
example_project/standin.py), migrates the temporary database that goes with it and adds an
``admin`` superuser whose password it prints.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from example_project.standin import prepare_database, use_standin_unless_configured

    if use_standin_unless_configured() is not None:
        import django

        django.setup()
        prepare_database()

    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
