"""`python -m wistia_emulator`: serve the emulator until SIGINT or SIGTERM.

From the repository root: `PYTHONPATH=tests python -m wistia_emulator --token local-token`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from wistia_emulator.api import ERROR_STYLES
from wistia_emulator.processing import is_loopback_host
from wistia_emulator.server import WistiaEmulator


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wistia_emulator",
        description="A local Wistia Upload API and Data API subset, on loopback only.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="TOKEN",
        help="an accepted API token (repeat for several); default: local-token",
    )
    parser.add_argument("--video-limit", type=int, default=None)
    parser.add_argument("--rate-limit", type=int, default=600, help="requests per window")
    parser.add_argument("--rate-window", type=float, default=60.0, help="seconds")
    parser.add_argument("--processing-delay", type=float, default=0.05, help="seconds")
    parser.add_argument("--error-style", choices=ERROR_STYLES, default="legacy")
    parser.add_argument("--data-dir", default=None, help="where uploads and imports are spooled")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    arguments = parser.parse_args(argv)
    if not is_loopback_host(arguments.host):
        parser.error(
            f"--host {arguments.host} is not a loopback address: the emulator serves "
            "127.0.0.1, ::1 or localhost only"
        )
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=logging.WARNING if arguments.quiet else logging.INFO,
        format="%(asctime)s %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    emulator = WistiaEmulator(
        host=arguments.host,
        port=arguments.port,
        tokens=arguments.tokens or ["local-token"],
        video_limit=arguments.video_limit,
        rate_limit=arguments.rate_limit,
        rate_window=arguments.rate_window,
        processing_delay=arguments.processing_delay,
        data_dir=arguments.data_dir,
        error_style=arguments.error_style,
    )
    try:
        emulator.start()
    except OSError as error:
        print(f"cannot listen on {arguments.host}:{arguments.port}: {error}", file=sys.stderr)
        return 1
    try:
        print(f"Wistia emulator listening on {emulator.url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
