"""Run as a Lambda execution environment with the template's Tracing at Active (a process
of its own: the X-Ray SDK patches botocore for the whole process). The import function
imports two objects and follows the deletion of one (ON_DELETE=archive), then the poller
asks Wistia for the other media's status; the X-Ray SDK sends every finished subsegment to the
daemon address the test listens on, as it does in Lambda.

    python -m integration.traced_functions IMPORT_ENV_JSON POLLER_ENV_JSON BUCKET
"""

from __future__ import annotations

import json
import os
import sys

from integration.test_deletions import created, deleted
from local_stack.functions import load_handler
from local_stack.harness import LambdaContext


def main(import_environment: str, poller_environment: str, bucket: str) -> None:
    os.environ.update(json.loads(import_environment))
    importer = load_handler("ImportFunction")
    imported = [
        importer(created(bucket, f"traced/{name}.mp4", "0A"), LambdaContext())
        for name in ("kept", "gone")
    ]
    removed = importer(deleted(bucket, "traced/gone.mp4", "0B"), LambdaContext())

    os.environ.update(json.loads(poller_environment))
    poller = load_handler("PollerFunction")
    polled = poller({}, LambdaContext())
    print(json.dumps({"imported": imported, "removed": removed, "polled": polled}))


if __name__ == "__main__":
    main(*sys.argv[1:])
