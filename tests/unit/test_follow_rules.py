"""The pure rules of following a key's writes and deletions: S3's sequencer order, which
import holds the key's media, and which media an overwrite replaces."""

from __future__ import annotations

from typing import Any

import pytest

from s3_to_wistia.contracts import ImportRecord
from s3_to_wistia.deletions import latest_import
from s3_to_wistia.importing import replaced_media
from s3_to_wistia.model import ObjectRef
from s3_to_wistia.rules import is_later


@pytest.mark.parametrize(
    ("sequencer", "than", "later"),
    [
        ("0B", "0A", True),
        ("0A", "0B", False),
        ("0A", "0A", False),
        # Compared after padding the shorter with zeros on the right, as S3 says
        ("0055AED6DCD90281E6", "0055AED6DCD90281E5", True),
        ("0055AED6DCD90281E5", "0055AED6DCD9028", True),
        ("0055AED6DCD9028", "0055AED6DCD90281E5", False),
        # An event without one (a backfill, a redrive) is never the later one
        (None, "0A", False),
        ("0A", None, True),
        (None, None, False),
    ],
)
def test_sequencers_order_a_keys_events(
    sequencer: str | None, than: str | None, later: bool
) -> None:
    assert is_later(sequencer, than) is later


def record(version: str, **attributes: Any) -> ImportRecord:
    return ImportRecord.from_attributes(
        {
            "bucket": "b",
            "object_key": "k",
            "object_version": version,
            "status": "SUBMITTED",
            **attributes,
        }
    )


def test_the_latest_import_is_the_greatest_sequencer_then_the_latest_submission() -> None:
    records = [
        record("v1", wistia_hashed_id="m1", sequencer="0A", submitted_at="2026-01-03"),
        record("v2", wistia_hashed_id="m2", sequencer="0C", submitted_at="2026-01-01"),
        record("v3", wistia_hashed_id="m3", submitted_at="2026-01-09"),  # a backfill: no order
        record("v4", status="FAILED", wistia_hashed_id="m4", sequencer="0F"),
    ]

    latest = latest_import(records)

    assert latest is not None and latest.wistia_hashed_id == "m2"
    assert latest_import([records[2], record("v5", wistia_hashed_id="m5", submitted_at="2026-02")])
    assert latest_import([]) is None


NEW = ObjectRef("b", "k", "v9", None, 1, {}, sequencer="0F")


def test_an_overwrite_replaces_the_original_of_the_latest_ready_version() -> None:
    records = [
        record("v1", wistia_hashed_id="m1", sequencer="0A", media_status="ready"),
        record(
            "v2",
            wistia_hashed_id="m2",
            sequencer="0B",
            media_status="ready",
            replaces_wistia_hashed_id="m1",
        ),
    ]

    assert replaced_media(records, NEW) == "m1"  # the key's original, not the replacement


def test_an_overwrite_of_a_key_without_a_ready_media_is_a_media_of_its_own() -> None:
    processing = [record("v1", wistia_hashed_id="m1", sequencer="0A", media_status="processing")]

    assert replaced_media(processing, NEW) is None
    assert replaced_media([], NEW) is None


def test_after_a_deletion_took_the_media_an_upload_is_a_media_of_its_own() -> None:
    records = [
        record("v1", wistia_hashed_id="m1", sequencer="0A", media_status="ready"),
        record("deleted:d1", status="DELETED", media_action="deleted", sequencer="0B"),
    ]
    kept = [records[0], record("deleted:d1", status="DELETED", media_action="kept", sequencer="0B")]

    assert replaced_media(records, NEW) is None
    assert replaced_media(kept, NEW) == "m1"
