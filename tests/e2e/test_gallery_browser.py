"""The example gallery in headless Chromium (tox env ``e2e``; not part of the other envs).

Starts the stand-in ImageKit server (this process) and the example site (``manage.py
runserver`` on loopback, pointed at the server through ``IMAGEKIT_*``), uploads a photo
through the upload page like a person would, and checks that the gallery's ``<img>`` made the
browser fetch a width-transformed URL from the stand-in server and rendered it. A screenshot
goes to ``build/e2e-gallery.png`` (a CI artefact), also when a step fails.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

# Installed in the e2e env only; a plain `pytest` run elsewhere says where this test runs.
pytest.importorskip("playwright", reason="the browser test runs in `tox -e e2e`")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example"
SCREENSHOT = ROOT / "build" / "e2e-gallery.png"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
# Without the networking flags Chromium keeps trying to reach the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
WIDTH_TRANSFORMATION = re.compile(r"(^|[,:])w-\d+")
SITE_START_SECONDS = 30
#: Each browser step waits at most this long (Playwright's default is 30 s).
STEP_TIMEOUT_MS = 15_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> bool:
    """True once the site listens on ``port``; False if it exited first."""
    deadline = time.monotonic() + SITE_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def start_site(
    command: list[str], env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """runserver on a free loopback port; another port if one is taken between the probe
    and runserver's bind (other processes share this machine)."""
    for _attempt in range(3):
        port = free_port()
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*command, f"127.0.0.1:{port}", "--noreload"],
                cwd=EXAMPLE,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        if wait_for_port(port, process):
            return process, port
        stop(process)
        if "port is already in use" not in log.read_text(errors="replace"):
            break
    pytest.fail(
        f"The example site did not listen within {SITE_START_SECONDS} s:\n"
        + log.read_text(errors="replace")
    )


@pytest.fixture
def chromium() -> str:
    # Checked first: without a browser, starting the site is wasted time.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"No Chromium at {CHROMIUM}: apt-get install -y chromium (see .ci/run).")
    return CHROMIUM


@pytest.fixture
def site(chromium, imagekit_server, tmp_path):
    """The example site on loopback, on the stand-in server; its URL."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "IMAGEKIT_PRIVATE_KEY": imagekit_server.private_key,
        "IMAGEKIT_URL_ENDPOINT": imagekit_server.url_endpoint,
        "IMAGEKIT_BASE_URL": imagekit_server.base_url,
        "EXAMPLE_DATABASE": str(tmp_path / "db.sqlite3"),
    }
    manage = [sys.executable, str(EXAMPLE / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v", "0"], cwd=EXAMPLE, env=env, check=True, timeout=60
    )
    log = tmp_path / "runserver.log"
    process, port = start_site([*manage, "runserver"], env, log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        # pytest shows this (captured teardown output) when the test failed: the site's side.
        print(f"--- the example site's log ({log}) ---\n{log.read_text(errors='replace')}")


def photo_file(path: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize((1200, 800)).convert("RGB")
    ImageDraw.Draw(image).ellipse((400, 200, 800, 600), fill=(240, 180, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    path.write_bytes(buffer.getvalue())
    return path


def test_upload_then_the_gallery_shows_a_width_transformed_image(
    site, chromium, imagekit_server, tmp_path
):
    from playwright.sync_api import sync_playwright

    photo = photo_file(tmp_path / "sunset.jpg")
    endpoint = imagekit_server.url_endpoint + "/"
    fetched: dict[str, int] = {}
    SCREENSHOT.unlink(missing_ok=True)  # never an old run's picture as this run's artefact

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, timeout=STEP_TIMEOUT_MS
        )
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.on(
                "response",
                lambda response: (
                    fetched.__setitem__(response.url, response.status)
                    if response.url.startswith(endpoint)
                    else None
                ),
            )
            try:
                page.goto(f"{site}/upload/")
                page.fill("input[name=title]", "Sunset")
                page.set_input_files("input[name=photo]", str(photo))
                with page.expect_navigation(url=f"{site}/"):
                    page.click("button[type=submit]")

                image = page.locator("ul.photos img").first
                image.wait_for(state="visible")
                page.wait_for_function(
                    "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
                )
                natural = image.evaluate(
                    "img => [img.naturalWidth, img.naturalHeight, img.currentSrc]"
                )
                srcset = image.get_attribute("srcset") or ""
            finally:
                # The CI artefact, most useful when a step above failed.
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()

    assert natural[0] > 0
    assert natural[1] > 0
    assert srcset, "the gallery's <img> has no srcset: is it written with imagekit_img?"
    # The browser fetched the image from the stand-in server with a width transformation.
    transformed = {
        url: status
        for url, status in fetched.items()
        if any(
            WIDTH_TRANSFORMATION.search(tr) for tr in parse_qs(urlsplit(url).query).get("tr", [])
        )
    }
    assert transformed, f"no width-transformed image was fetched: {fetched}"
    assert set(transformed.values()) == {200}
    assert natural[2] in transformed
    # And the server recorded it: the same request, seen from the other side.
    deliveries = [
        request
        for request in imagekit_server.requests
        if request.route == "delivery"
        and any(WIDTH_TRANSFORMATION.search(tr) for tr in request.query.get("tr", []))
    ]
    assert deliveries
    assert all(request.status == 200 for request in deliveries)
    assert SCREENSHOT.stat().st_size > 0
