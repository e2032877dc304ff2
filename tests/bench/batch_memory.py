"""`PYTHONPATH=tests .venv/bin/python -m bench.batch_memory [--tasks N] [--objects M]`

Peak memory of the local S3 Batch Operations job runner (local_stack.batch_operations),
measured in this process while moto's server runs in its own: a job of N tasks from a CSV
manifest and a job of M tasks from a generated manifest, each with a trivial handler and an
AllTasks completion report. Prints the process's peak RSS before and after each job and the
peak of Python allocations traced during it (tracemalloc). It measures; it does not judge.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3

from bench.services import moto
from local_stack.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, patched_environ
from local_stack.batch_manifest import ObjectFilter
from local_stack.batch_operations import (
    CsvManifest,
    GeneratedManifest,
    JobResult,
    LambdaInvoke,
    Manifest,
    RunnerSettings,
    run_job,
)
from local_stack.batch_report import CompletionReport

BUCKET = "batch-memory-bench"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:backfill"
MIB = 1024 * 1024


def trivial(event: dict[str, Any], context: Any) -> dict[str, Any]:
    [task] = event["tasks"]
    return {
        "invocationSchemaVersion": event["invocationSchemaVersion"],
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": event["invocationId"],
        "results": [{"taskId": task["taskId"], "resultCode": "Succeeded", "resultString": "ok"}],
    }


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(name: str, manifest: Manifest, s3: Any) -> None:
    settings = RunnerSettings(concurrency=10)
    operation = LambdaInvoke(FUNCTION, "2.0")
    report = CompletionReport(BUCKET, f"reports/{name}")
    before = peak_rss_mib()
    started = time.perf_counter()
    result: JobResult = run_job(trivial, operation, manifest, report, settings, s3)
    seconds = time.perf_counter() - started
    after = peak_rss_mib()
    tracemalloc.start()
    traced: JobResult = run_job(trivial, operation, manifest, report, settings, s3)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.status == traced.status == "Complete", (result, traced)
    print(
        f"{name:>10} {result.total_tasks:>8,} tasks  {seconds:6.1f} s  "
        f"peak RSS {before:6.1f} -> {after:6.1f} MiB  "
        f"traced peak {traced_peak / MIB:6.1f} MiB",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch_memory", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000, help="rows of the CSV manifest")
    parser.add_argument("--objects", type=int, default=10_000, help="objects to list")
    arguments = parser.parse_args(argv)
    with (
        moto() as server,
        patched_environ(
            {
                "AWS_ENDPOINT_URL": server.url,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                "AWS_DEFAULT_REGION": REGION,
            }
        ),
    ):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory() as folder:
            rows = Path(folder) / "manifest.csv"
            with rows.open("w", encoding="utf-8") as handle:
                for n in range(arguments.tasks):
                    handle.write(f"{BUCKET},csv/video%20{n:06d}.mp4\n")
            s3.upload_file(str(rows), BUCKET, "manifest.csv")
        etag = s3.head_object(Bucket=BUCKET, Key="manifest.csv")["ETag"]
        with ThreadPoolExecutor(16) as pool:
            keys = [f"listed/video {n:06d}.mp4" for n in range(arguments.objects)]
            list(pool.map(lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=b""), keys))
        print(f"baseline peak RSS {peak_rss_mib():.1f} MiB (Python, boto3, the test data)")
        measure("csv", CsvManifest(BUCKET, "manifest.csv", etag=etag), s3)
        measure("generated", GeneratedManifest(BUCKET, ObjectFilter(prefixes=("listed/",))), s3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
