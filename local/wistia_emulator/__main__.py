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
from wistia_emulator.state import TOKEN_RIGHTS, parse_token_spec
from wistia_emulator.webhooks import WebhookDelivery

DELIVERY_FLAGS: list[tuple[str, type, str]] = [
    ("max_batch", int, "events per POST at most"),
    ("batch_window", float, "seconds a POST waits for more events"),
    ("duplicate_share", float, "share of events sent twice"),
    ("reorder_share", float, "share of events held back behind later ones"),
    ("drop_share", float, "share of events never sent"),
    ("seed", int, "seed of those shares' draws"),
    ("hold_seconds", float, "how long a held-back event or a duplicate waits"),
    ("max_attempts", int, "tries per POST when the receiver fails"),
    ("retry_delay", float, "seconds before the first retry (doubling)"),
]


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
        metavar="TOKEN[:RIGHTS]",
        help="an accepted API token (repeat for several); RIGHTS is one of "
        f"{', '.join(TOKEN_RIGHTS)} (default full); default token: local-token",
    )
    parser.add_argument("--video-limit", type=int, default=None)
    parser.add_argument("--rate-limit", type=int, default=600, help="requests per window")
    parser.add_argument("--rate-window", type=float, default=60.0, help="seconds")
    parser.add_argument("--processing-delay", type=float, default=0.05, help="seconds")
    parser.add_argument("--error-style", choices=ERROR_STYLES, default="legacy")
    parser.add_argument("--data-dir", default=None, help="where uploads and imports are spooled")
    parser.add_argument(
        "--no-sniff",
        dest="sniff_media",
        action="store_false",
        help="accept any bytes as media (by default a file that is not audio or video fails)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    hooks = parser.add_argument_group("webhooks (sent only with --webhook-url)")
    hooks.add_argument("--webhook-url", default=None, help="a loopback URL to POST events to")
    hooks.add_argument("--webhook-secret", default=None, help="the key bodies are signed with")
    defaults = WebhookDelivery()
    for name, kind, text in DELIVERY_FLAGS:
        hooks.add_argument(
            "--webhook-" + name.replace("_", "-"),
            dest=f"webhook_{name}",
            type=kind,
            default=getattr(defaults, name),
            help=f"{text} (default {getattr(defaults, name)})",
        )
    arguments = parser.parse_args(argv)
    if arguments.webhook_url is not None and not arguments.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret: Wistia signs every webhook")
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
    tokens = dict(parse_token_spec(spec) for spec in arguments.tokens or ["local-token"])
    try:
        delivery = WebhookDelivery(
            **{name: getattr(arguments, f"webhook_{name}") for name, _, _ in DELIVERY_FLAGS}
        )
        emulator = WistiaEmulator(
            host=arguments.host,
            port=arguments.port,
            tokens=tokens,
            video_limit=arguments.video_limit,
            rate_limit=arguments.rate_limit,
            rate_window=arguments.rate_window,
            processing_delay=arguments.processing_delay,
            data_dir=arguments.data_dir,
            error_style=arguments.error_style,
            sniff_media=arguments.sniff_media,
            webhook_url=arguments.webhook_url,
            webhook_secret=arguments.webhook_secret,
            webhook_delivery=delivery,
        )
    except ValueError as error:
        print(f"bad settings: {error}", file=sys.stderr)
        return 2
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
