"""The completion report of the S3 Batch Operations stand-in, written as S3 writes it.

Layout (AWS's "Examples: S3 Batch Operations completion reports"):

    <prefix>/job-<id>/manifest.json          Format, ReportCreationDate, Results, ReportSchema
    <prefix>/job-<id>/results/<hex>.csv      one file of succeeded tasks, one of failed ones

The CSV files have no header. S3's documented ReportSchema reads "Bucket, Key, VersionId,
TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage", but its own example rows carry the HTTP
status in the fifth column and the error code in the sixth:

    awsexamplebucket1,image_14975,,failed,200,PermanentFailure,"Lambda returned function error: ..."
    awsexamplebucket1,image_17775,,succeeded,200,,"{u'CopySourceVersionId': ...}"

The stand-in writes rows the way those examples do, and `ReportRow` names the columns by what
they hold. Rows are appended to local files as tasks finish, so a report of any length costs
the same memory; the files are uploaded when the job ends.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

from local_stack.batch_manifest import ManifestEntry, job_prefix

REPORT_FORMAT = "Report_CSV_20180820"
REPORT_SCHEMA = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
ReportScope = Literal["AllTasks", "FailedTasksOnly"]
REPORT_SCOPES: tuple[ReportScope, ...] = ("AllTasks", "FailedTasksOnly")
# Lambda's Invoke answered: a function error or a bad answer still comes back with HTTP 200.
INVOKE_STATUS = "200"


@dataclass(frozen=True)
class CompletionReport:
    """Where the job writes its completion report, and which tasks go in it."""

    bucket: str
    prefix: str = ""
    scope: ReportScope = "AllTasks"

    def __post_init__(self) -> None:
        if self.scope not in REPORT_SCOPES:
            raise ValueError(f"report scope must be one of {REPORT_SCOPES}, not {self.scope!r}")


class ReportRow(NamedTuple):
    """One line of a completion report, columns named by what S3 puts in them."""

    bucket: str
    key: str  # as in the manifest: URL-encoded
    version_id: str
    task_status: str  # "succeeded" or "failed"
    http_status_code: str
    error_code: str  # "" when the task succeeded, else its final result code
    result_message: str


def report_row(entry: ManifestEntry, result_code: str, message: str) -> list[str]:
    """The CSV columns S3 writes for a task that ended with `result_code`."""
    succeeded = result_code == "Succeeded"
    return [
        entry.bucket,
        entry.key,
        entry.version_id or "",
        "succeeded" if succeeded else "failed",
        INVOKE_STATUS,
        "" if succeeded else result_code,
        message,
    ]


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReportWriter:
    """Collects finished tasks into a succeeded and a failed CSV file under `directory`."""

    def __init__(self, report: CompletionReport, directory: Path) -> None:
        self.report = report
        self._directory = directory
        self._files: dict[str, tuple[Path, IO[str], Any]] = {}
        self._lock = threading.Lock()
        self.rows = 0

    def add(self, entry: ManifestEntry, result_code: str, message: str) -> None:
        row = report_row(entry, result_code, message)
        status = row[3]
        if status == "succeeded" and self.report.scope == "FailedTasksOnly":
            return
        with self._lock:
            if status not in self._files:
                path = self._directory / f"report-{status}.csv"
                handle = path.open("w", encoding="utf-8", newline="")
                self._files[status] = (path, handle, csv.writer(handle, lineterminator="\n"))
            self._files[status][2].writerow(row)
            self.rows += 1

    def close(self) -> None:
        with self._lock:
            for _, handle, _ in self._files.values():
                handle.close()

    def publish(self, s3: Any, job_id: str) -> str:
        """Upload the result files and the report's manifest.json; the manifest's key."""
        self.close()
        folder = job_prefix(self.report.prefix, job_id)
        results = []
        for status in ("succeeded", "failed"):
            if status not in self._files:
                continue
            path = self._files[status][0]
            key = f"{folder}/results/{secrets.token_hex(20)}.csv"
            s3.upload_file(str(path), self.report.bucket, key)
            results.append(
                {
                    "TaskExecutionStatus": status,
                    "Bucket": self.report.bucket,
                    "MD5Checksum": _md5(path),
                    "Key": key,
                }
            )
        manifest = {
            "Format": REPORT_FORMAT,
            "ReportCreationDate": iso_now(),
            "Results": results,
            "ReportSchema": REPORT_SCHEMA,
        }
        manifest_key = f"{folder}/manifest.json"
        s3.put_object(
            Bucket=self.report.bucket,
            Key=manifest_key,
            Body=json.dumps(manifest, indent=4).encode(),
            ContentType="application/json",
        )
        return manifest_key


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ReportContents:
    """A completion report read back: its manifest.json and every row of its result files."""

    manifest: dict[str, Any]
    rows: list[ReportRow]

    def by_key(self) -> dict[str, ReportRow]:
        return {row.key: row for row in self.rows}


def read_completion_report(s3: Any, bucket: str, manifest_key: str) -> ReportContents:
    """Parse a report the way a user would: manifest.json, then each listed CSV (all of it in
    memory; meant for tests and summaries)."""
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    rows: list[ReportRow] = []
    for result in manifest["Results"]:
        text = s3.get_object(Bucket=result["Bucket"], Key=result["Key"])["Body"].read()
        lines = io.StringIO(text.decode("utf-8"), newline="")
        rows.extend(ReportRow(*line) for line in csv.reader(lines))
    return ReportContents(manifest, rows)
