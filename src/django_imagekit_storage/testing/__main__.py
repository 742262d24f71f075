"""``python -m django_imagekit_storage.testing``: run the stand-in ImageKit server until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from typing import TYPE_CHECKING

from django_imagekit_storage.testing.server import FakeImageKitServer

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_imagekit_storage.testing",
        description="Run a stand-in ImageKit server (upload, management and delivery APIs) "
        "for local development and tests. Nothing leaves this machine.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free port)"
    )
    parser.add_argument(
        "--private-key",
        default="private_test_key",
        help="the key clients must use (default 'private_test_key')",
    )
    parser.add_argument(
        "--endpoint-id",
        default="demo",
        help="the URL endpoint id: files are served under /<id>/ (default 'demo')",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(message)s")
    try:
        server = FakeImageKitServer(
            private_key=args.private_key,
            endpoint_id=args.endpoint_id,
            host=args.host,
            port=args.port,
        ).start()
    except (OSError, ValueError) as error:
        print(f"Cannot start the stand-in ImageKit server: {error}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Only a prefix: a real key passed here by mistake stays out of terminals and CI logs.
    key_hint = args.private_key[:4] + "..."
    try:
        print(f"Stand-in ImageKit server listening on {server.base_url}", flush=True)
        print(f"  IMAGEKIT_BASE_URL={server.base_url}")
        print(f"  IMAGEKIT_URL_ENDPOINT={server.url_endpoint}")
        print(f"  IMAGEKIT_PRIVATE_KEY: the --private-key value ({key_hint})")
        print("Press Ctrl-C to stop.", flush=True)
        # sleep() rather than an Event: Ctrl-C interrupts it on every platform.
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("Stopping.", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
