"""The example's embedded default: the stand-in ImageKit server when no account is configured.

With no ``IMAGEKIT_*`` environment variables, :func:`use_standin_unless_configured` starts
``django_imagekit_storage.testing.FakeImageKitServer`` in this process and exports the
``IMAGEKIT_*`` variables pointing at it, so every process started from here (runserver's
autoreloader child included) finds the same server. The stand-in keeps files in memory, so
the example's database is a temporary file that lives exactly as long.

With ``IMAGEKIT_PRIVATE_KEY`` and ``IMAGEKIT_URL_ENDPOINT`` set, nothing happens: the same
project runs on that ImageKit account.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django_imagekit_storage.testing import FakeImageKitServer

#: Set in the environment when the stand-in serves this process tree.
STANDIN_MARKER = "EXAMPLE_IMAGEKIT_STANDIN"
#: The database file the settings use (a temporary one on the stand-in).
DATABASE_VARIABLE = "EXAMPLE_DATABASE"


def imagekit_configured(environ: dict[str, str] | os._Environ[str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return any(name.startswith("IMAGEKIT_") and value for name, value in environ.items())


def use_standin_unless_configured(*, quiet: bool = False) -> FakeImageKitServer | None:
    """Start the stand-in server unless ``IMAGEKIT_*`` variables are set; return it."""
    if imagekit_configured():
        return None
    from django_imagekit_storage.testing import FakeImageKitServer

    # A fresh key per run: nothing real, and it shows that no output ever contains it.
    server = FakeImageKitServer(private_key=f"private_{secrets.token_urlsafe(18)}").start()
    atexit.register(server.stop)
    scratch = tempfile.mkdtemp(prefix="imagekit-example-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.environ.update(
        {
            "IMAGEKIT_PRIVATE_KEY": server.private_key,
            "IMAGEKIT_URL_ENDPOINT": server.url_endpoint,
            "IMAGEKIT_BASE_URL": server.base_url,
            STANDIN_MARKER: "1",
            DATABASE_VARIABLE: str(Path(scratch) / "db.sqlite3"),
        }
    )
    if not quiet:
        print(
            f"No IMAGEKIT_* environment variables: using the stand-in ImageKit server at "
            f"{server.base_url} (files and the example's database live until this process "
            "exits). Set IMAGEKIT_PRIVATE_KEY and IMAGEKIT_URL_ENDPOINT to use your account.",
            file=sys.stderr,
        )
    return server


def on_standin() -> bool:
    return os.environ.get(STANDIN_MARKER) == "1"


def prepare_database(*, quiet: bool = False) -> str | None:
    """Migrate the stand-in's temporary database and add a superuser ``admin`` with a fresh
    password, so the admin can be tried; return that password (None when it exists already).

    Call it once, after Django is set up, in the process that started the stand-in: the
    database lives as long as that process, so ``manage.py createsuperuser`` in another
    shell would create the user in another database."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    users = get_user_model()
    if users.objects.filter(username="admin").exists():
        return None
    password = secrets.token_urlsafe(9)
    users.objects.create_superuser("admin", "admin@example.com", password)
    if not quiet:
        print(
            f"The admin (/admin/) on this temporary database: user 'admin', password "
            f"{password!r} (for this run only).",
            file=sys.stderr,
        )
    return password
