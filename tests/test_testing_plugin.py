"""The pytest plugin: registered by entry point, light to load, fixtures wired to the server."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any

import pytest
from django.conf import settings as django_settings

from django_imagekit_storage.testing import FakeImageKitServer

_HAS_STORAGE = importlib.util.find_spec("django_imagekit_storage.storage") is not None
needs_storage = pytest.mark.skipif(not _HAS_STORAGE, reason="storage.py is not on this branch yet")


def test_registered_as_pytest11_entry_point() -> None:
    entry_points = metadata.entry_points(group="pytest11")
    values = {ep.name: ep.value for ep in entry_points}
    assert values.get("django_imagekit_storage") == "django_imagekit_storage.testing.plugin"


def test_plugin_and_package_import_nothing_heavy() -> None:
    # Loaded in every pytest run of every user: no Django settings, no server, no SDK.
    code = (
        "import sys, django_imagekit_storage, django_imagekit_storage.testing.plugin\n"
        "heavy = [m for m in ('http.server', 'socketserver', 'django.conf', "
        "'django_imagekit_storage.testing.server', 'imagekitio', 'httpx', 'PIL') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {"PATH": "", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr


def test_imagekit_server_is_running_and_reset(imagekit_server: FakeImageKitServer) -> None:
    assert imagekit_server.files == {}
    assert imagekit_server.requests == []
    imagekit_server.add_file("leftover.txt", b"x")
    imagekit_server.fail("upload")


def test_imagekit_server_forgets_the_previous_test(imagekit_server: FakeImageKitServer) -> None:
    # Runs after the test above: its file and fault are gone.
    assert imagekit_server.files == {}
    assert imagekit_server.base_url.startswith("http://127.0.0.1:")
    assert imagekit_server.url_endpoint == imagekit_server.base_url + "/demo"


def test_session_server_is_the_same_object(
    imagekit_server: FakeImageKitServer, imagekit_server_session: FakeImageKitServer
) -> None:
    assert imagekit_server is imagekit_server_session


def test_imagekit_settings_points_django_at_the_server(
    imagekit_settings: FakeImageKitServer,
) -> None:
    assert imagekit_settings.private_key == django_settings.IMAGEKIT_PRIVATE_KEY
    assert imagekit_settings.url_endpoint == django_settings.IMAGEKIT_URL_ENDPOINT
    assert imagekit_settings.base_url == django_settings.IMAGEKIT_BASE_URL
    assert django_settings.STORAGES["default"] == {
        "BACKEND": "django_imagekit_storage.storage.ImageKitStorage"
    }
    # Other aliases are kept.
    assert "staticfiles" in django_settings.STORAGES


def test_imagekit_settings_are_restored_afterwards() -> None:
    assert not hasattr(django_settings, "IMAGEKIT_PRIVATE_KEY")
    assert django_settings.STORAGES["default"]["BACKEND"].endswith("InMemoryStorage")


@needs_storage
def test_default_storage_saves_to_the_server(imagekit_settings: FakeImageKitServer) -> None:
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    name = default_storage.save("docs/hello.txt", ContentFile(b"hello"))
    assert default_storage.exists(name)
    assert [f.data for f in imagekit_settings.files.values()] == [b"hello"]


@needs_storage
def test_imagekit_storage_fixture(
    imagekit_storage: Any, imagekit_server: FakeImageKitServer
) -> None:
    from django.core.files.base import ContentFile

    name = imagekit_storage.save("a.txt", ContentFile(b"abc"))
    assert imagekit_storage.open(name).read() == b"abc"
    assert imagekit_server.count("upload") == 1


@needs_storage
def test_imagekit_storage_factory_passes_options(
    imagekit_storage_factory: Callable[..., Any],
) -> None:
    storage = imagekit_storage_factory(location="media")
    assert storage.settings.location == "media"


def test_command_line_prints_the_endpoints_and_stops_on_sigterm() -> None:
    import signal

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django_imagekit_storage.testing",
            "--private-key",
            "sekrit_key_123",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        first = lines[0]
        assert lines[-1] == "Press Ctrl-C to stop.\n"
        assert first.startswith("Stand-in ImageKit server listening on http://127.0.0.1:")
        base_url = first.rsplit(" ", 1)[1].strip()
        import http.client
        import urllib.parse

        parts = urllib.parse.urlsplit(base_url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
        connection.request("GET", "/v1/files")
        assert connection.getresponse().status == 403
        connection.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert process.stderr is not None
        out, err = process.stdout.read(), process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert process.returncode == 0, err
    output = "".join(lines) + out
    assert f"IMAGEKIT_URL_ENDPOINT={base_url}/demo" in output
    assert "sekrit_key_123" not in output + err
    assert "sekr..." in output


@pytest.mark.parametrize(
    ("django_plugin", "summary"),
    [("with pytest-django", "2 passed, 1 skipped"), ("without pytest-django", "3 passed")],
)
def test_a_project_without_django_settings_runs_and_uses_the_server(
    tmp_path: Any, django_plugin: str, summary: str
) -> None:
    # The plugin loads in every pytest run where the package is installed, Django or not.
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    (tmp_path / "test_plain.py").write_text(
        "import urllib.request\n"
        "def test_plain():\n"
        "    assert 1 + 1 == 2\n"
        "def test_server(imagekit_server):\n"
        "    imagekit_server.add_file('a.txt', b'hi')\n"
        "    with urllib.request.urlopen(imagekit_server.url_endpoint + '/a.txt') as answer:\n"
        "        assert answer.read() == b'hi'\n"
        "def test_settings_fixture_needs_pytest_django(request):\n"
        "    import pytest\n"
        "    if request.config.pluginmanager.hasplugin('django'):\n"
        "        pytest.skip('pytest-django is loaded')\n"
        "    with pytest.raises(pytest.UsageError, match='pytest-django'):\n"
        "        request.getfixturevalue('imagekit_settings')\n"
    )
    arguments = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    if django_plugin == "without pytest-django":
        arguments[4:4] = ["-p", "no:django"]
    result = subprocess.run(
        arguments,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "", "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{summary} in" in result.stdout
