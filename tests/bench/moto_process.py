"""`python -m bench.moto_process --port N`: local_stack's moto server in its own process.

The bench runs moto apart from the measured process so its CPU is not counted there.
Prints `listening on <endpoint>` once serving; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from local_stack.aws import LocalAws


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.moto_process")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    arguments = parser.parse_args(argv)
    # werkzeug logs every request at INFO unless told otherwise; that is moto's CPU, not news.
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.setLevel(logging.ERROR)
    werkzeug.addHandler(logging.NullHandler())
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with LocalAws(port=arguments.port) as aws:
        print(f"listening on {aws.endpoint_url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
