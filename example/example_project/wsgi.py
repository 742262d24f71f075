"""WSGI entry point, e.g. ``gunicorn example_project.wsgi`` from ``example/``.

Like manage.py, it falls back to the stand-in ImageKit server when no IMAGEKIT_* variables
are set (one server per worker process: fine for trying it out, not for production).
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from example_project.standin import prepare_database, use_standin_unless_configured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
if use_standin_unless_configured() is not None:
    application = get_wsgi_application()
    prepare_database()
else:
    application = get_wsgi_application()
