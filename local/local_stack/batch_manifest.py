"""Manifests for the S3 Batch Operations stand-in (batch_operations.py): a CSV manifest read
from S3, or one generated from a bucket listing as S3's `ManifestGenerator` does.

Both are streamed a row or a listing page at a time, so a manifest of any length costs the
same memory. Keys are carried the way S3 carries them in a manifest and in the tasks it sends
to Lambda: URL-encoded. A CSV manifest's keys are passed on exactly as written (S3 requires
them URL-encoded and does not re-encode them); keys S3 lists itself are percent-encoded UTF-8
with '/' kept, so `unquote` and `unquote_plus` both give the key back.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

CSV_MANIFEST_FORMAT = "S3BatchOperations_CSV_20180820"
GENERATED_MANIFEST_FORMAT = "S3InventoryReport_CSV_20211130"
MANIFEST_FIELDS = ("Ignore", "Bucket", "Key", "VersionId")
# The columns of the generated manifest's data file (S3 Inventory has more; these are the
# ones a job reads).
GENERATED_SCHEMA = "Bucket, Key, VersionId"
STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "GLACIER",
    "INTELLIGENT_TIERING",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
)


class ManifestError(ValueError):
    """The manifest cannot be read: the job fails before it runs a task, as S3's does."""


class ManifestEntry(NamedTuple):
    """One object of a manifest; `key` URL-encoded, as it appears in the manifest."""

    bucket: str
    key: str
    version_id: str | None


def encode_key(key: str) -> str:
    """A key as S3 writes it into a manifest and a task: percent-encoded UTF-8, '/' kept.
    A space becomes %20 and a '+' %2B, so decoding with or without '+'-as-space agrees."""
    return quote(key, safe="/")


def check_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """A CSV manifest's `Spec.Fields`: Bucket and Key once each, VersionId at most once,
    anything else Ignore."""
    fields = tuple(fields)
    unknown = [name for name in fields if name not in MANIFEST_FIELDS]
    if unknown:
        raise ManifestError(f"unknown manifest field {unknown[0]!r}; use {MANIFEST_FIELDS}")
    for name, most in (("Bucket", 1), ("Key", 1), ("VersionId", 1)):
        count = fields.count(name)
        if count > most or (name != "VersionId" and count == 0):
            raise ManifestError(f"manifest fields {list(fields)} must name {name} once")
    return fields


def parse_manifest(lines: Iterable[str], fields: Sequence[str]) -> Iterator[ManifestEntry]:
    """The entries of a CSV manifest, one per row, as `fields` names its columns.

    Every row has exactly the declared columns; with a VersionId column every row gives a
    version (S3: version ids for all objects or for none). Blank lines are skipped.
    """
    fields = check_fields(fields)
    bucket_at, key_at = fields.index("Bucket"), fields.index("Key")
    version_at = fields.index("VersionId") if "VersionId" in fields else None
    for number, row in enumerate(csv.reader(lines), start=1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(fields):
            raise ManifestError(
                f"manifest row {number} has {len(row)} columns, the job declares "
                f"{len(fields)} ({', '.join(fields)})"
            )
        bucket, key = row[bucket_at], row[key_at]
        if not bucket or not key:
            raise ManifestError(f"manifest row {number} has no bucket or no key")
        version = row[version_at] if version_at is not None else None
        if version_at is not None and not version:
            raise ManifestError(
                f"manifest row {number} has no VersionId: a manifest gives version ids "
                "for every object or for none"
            )
        yield ManifestEntry(bucket, key, version)


def read_csv_manifest(
    s3: Any, bucket: str, key: str, etag: str | None = None, version_id: str | None = None
) -> Iterator[str]:
    """The lines of a manifest object in S3, streamed. `etag`, when given, must match the
    object's, as S3 checks the ETag a job was created with."""
    request: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        request["VersionId"] = version_id
    try:
        answer = s3.get_object(**request)
    except Exception as error:
        raise ManifestError(f"reading the manifest s3://{bucket}/{key} failed: {error}") from error
    actual = str(answer["ETag"]).strip('"')
    if etag is not None and etag.strip('"') != actual:
        answer["Body"].close()
        raise ManifestError(f"the manifest's ETag is {actual}, the job was created with {etag}")
    try:
        for line in answer["Body"].iter_lines():
            yield line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ManifestError(f"the manifest is not UTF-8: {error}") from error
    finally:
        answer["Body"].close()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ObjectFilter:
    """The `ManifestGenerator` filters S3 applies to a listing (JobManifestGeneratorFilter).
    Each given criterion must hold; within a list, any entry may match. Comparisons are
    strict (created after/before, size greater/less than) and case-sensitive."""

    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    substrings: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    size_greater_than: int | None = None
    size_less_than: int | None = None
    storage_classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [name for name in self.storage_classes if name not in STORAGE_CLASSES]
        if unknown:
            raise ValueError(f"unknown storage class {unknown[0]!r}; S3 knows {STORAGE_CLASSES}")

    def matches(self, key: str, size: int, last_modified: datetime, storage_class: str) -> bool:
        if self.prefixes and not key.startswith(self.prefixes):
            return False
        if self.suffixes and not key.endswith(self.suffixes):
            return False
        if self.substrings and not any(part in key for part in self.substrings):
            return False
        modified = _aware(last_modified)
        if self.created_after is not None and not modified > _aware(self.created_after):
            return False
        if self.created_before is not None and not modified < _aware(self.created_before):
            return False
        if self.size_greater_than is not None and not size > self.size_greater_than:
            return False
        if self.size_less_than is not None and not size < self.size_less_than:
            return False
        return not self.storage_classes or storage_class in self.storage_classes


def listing_prefixes(prefixes: Sequence[str]) -> list[str]:
    """The fewest listings that cover every prefix, none listing an object twice: a prefix
    inside another one ("a/b/" within "a/") is dropped."""
    if not prefixes or "" in prefixes:
        return [""]
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not any(prefix.startswith(shorter) for shorter in kept):
            kept.append(prefix)
    return kept


def generate_manifest(
    s3: Any, bucket: str, object_filter: ObjectFilter, page_size: int = 1000
) -> Iterator[ManifestEntry]:
    """The objects of `bucket` that pass the filter, listed a page at a time (S3 lists 1,000
    keys a page). A versioned bucket gives each key's current version (delete markers and
    older versions left out)."""
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    versioned = versioning in ("Enabled", "Suspended")
    paging = {"PageSize": page_size}
    for prefix in listing_prefixes(object_filter.prefixes):
        if versioned:
            pages = s3.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig=paging
            )
            listed = (
                version
                for page in pages
                for version in page.get("Versions", [])
                if version.get("IsLatest")
            )
        else:
            pages = s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig=paging
            )
            listed = (obj for page in pages for obj in page.get("Contents", []))
        for obj in listed:
            if object_filter.matches(
                obj["Key"], obj["Size"], obj["LastModified"], obj.get("StorageClass", "STANDARD")
            ):
                yield ManifestEntry(bucket, encode_key(obj["Key"]), obj.get("VersionId"))


class Spool:
    """A job's manifest copied to a local file while S3 would be preparing the job: counted
    once, then read back a row at a time while the job runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def fill(self, entries: Iterable[ManifestEntry]) -> int:
        with self.path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            for entry in entries:
                writer.writerow((entry.bucket, entry.key, entry.version_id or ""))
                self.count += 1
        return self.count

    def __iter__(self) -> Iterator[ManifestEntry]:
        with self.path.open(encoding="utf-8", newline="") as handle:
            for bucket, key, version in csv.reader(handle):
                yield ManifestEntry(bucket, key, version or None)


@dataclass(frozen=True)
class ManifestOutput:
    """Where S3 writes a generated manifest when `EnableManifestOutput` is set."""

    bucket: str
    prefix: str = ""


def job_prefix(prefix: str, job_id: str) -> str:
    """`<prefix>/job-<id>`, the folder S3 writes a job's reports and generated manifest to."""
    prefix = prefix.rstrip("/")
    return f"{prefix}/job-{job_id}" if prefix else f"job-{job_id}"


def publish_generated_manifest(
    s3: Any, spool: Spool, source_bucket: str, output: ManifestOutput, job_id: str
) -> tuple[str, str]:
    """Write the generated manifest as an S3 Inventory-style `manifest.json` and a gzipped
    CSV data file under `<prefix>/job-<id>/`; the manifest.json's key and ETag."""
    folder = job_prefix(output.prefix, job_id)
    data = spool.path.with_suffix(".csv.gz")
    with spool.path.open("rb") as source, gzip.open(data, "wb") as packed:
        while chunk := source.read(1 << 16):
            packed.write(chunk)
    data_key = f"{folder}/data/{uuid.uuid4()}.csv.gz"
    digest = hashlib.md5(usedforsecurity=False)
    with data.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            digest.update(chunk)
    s3.upload_file(str(data), output.bucket, data_key)
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{output.bucket}",
        "version": "2021-11-30",
        "creationTimestamp": str(int(time.time() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": GENERATED_SCHEMA,
        "files": [
            {"key": data_key, "size": data.stat().st_size, "MD5checksum": digest.hexdigest()}
        ],
    }
    manifest_key = f"{folder}/manifest.json"
    answer = s3.put_object(
        Bucket=output.bucket,
        Key=manifest_key,
        Body=json.dumps(manifest, indent=2).encode(),
        ContentType="application/json",
    )
    return manifest_key, str(answer["ETag"]).strip('"')


def read_generated_manifest(s3: Any, bucket: str, manifest_key: str) -> list[ManifestEntry]:
    """The entries of a generated manifest S3 wrote (for tests and reports: all in memory)."""
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    entries: list[ManifestEntry] = []
    for file in manifest["files"]:
        packed = s3.get_object(Bucket=bucket, Key=file["key"])["Body"].read()
        rows = csv.reader(io.StringIO(gzip.decompress(packed).decode("utf-8"), newline=""))
        entries.extend(ManifestEntry(b, k, v or None) for b, k, v in rows)
    return entries
