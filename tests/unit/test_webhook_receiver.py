"""The webhook receiver (core) on Function URL events, with in-memory fakes: 401 for a
missing, forged or stale signature, 400 for a signed body that is not a webhook body or is
too large, 200 for the rest, and nothing changed by a request that is refused or replayed."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from s3_to_wistia.adapters.secrets import PLACEHOLDER_WEBHOOK_KEY, webhook_key_from_secret
from s3_to_wistia.errors import PermanentError, RetryableError
from s3_to_wistia.media_status import StatusUpdater
from s3_to_wistia.model import RecordKey
from s3_to_wistia.signatures import signature
from s3_to_wistia.webhooks import SECRET_REFRESH_SECONDS, WebhookReceiver
from unit.fakes import Clock, CountingMetrics, FakeDeadLetters, FakeRecords, ListLog, obj

KEY = "whsec-current-key-0001"
OLD_KEY = "whsec-old-key-rotated-0000"
HASHED_ID = "abc123def4"
LIMIT = 64 * 1024


@dataclass
class FakeSecret:
    """The webhook secret in Secrets Manager: `value` now, `cached` what a read kept."""

    value: str = KEY
    cached: str | None = None
    reads: int = 0
    failure: Exception | None = None

    def get(self, refresh: bool = False) -> str:
        if self.failure is not None:
            raise self.failure
        if self.cached is None or refresh:
            self.reads += 1
            self.cached = webhook_key_from_secret(self.value, "webhook-secret")
        return self.cached


@dataclass
class Site:
    receiver: WebhookReceiver
    secret: FakeSecret
    records: FakeRecords
    dead_letters: FakeDeadLetters
    metrics: CountingMetrics
    log: ListLog
    clock: Clock
    key: RecordKey = field(default_factory=lambda: RecordKey("", ""))

    def stored(self) -> dict[str, Any]:
        return dict(self.records.item(self.key))


def site() -> Site:
    clock = Clock()
    records = FakeRecords(clock)
    dead_letters = FakeDeadLetters()
    metrics = CountingMetrics()
    log = ListLog()
    secret = FakeSecret()
    updater = StatusUpdater(records, dead_letters, metrics, log, clock=clock)
    receiver = WebhookReceiver(secret, updater, metrics, log, LIMIT, clock=clock)
    built = Site(receiver, secret, records, dead_letters, metrics, log, clock)
    built.key = records.add_submitted(obj("clips/demo.mp4"), HASHED_ID, "2026-01-31T12:00:00.000Z")
    return built


def webhook_body(*types: str, hashed_id: str = HASHED_ID) -> bytes:
    events = [
        {
            "uuid": f"uuid-{n}-{event_type}",
            "type": event_type,
            "generated_at": f"2026-01-31T12:00:{n + 1:02d}Z",
            "metadata": {"account_id": "a1"},
            "payload": {"media": {"id": hashed_id, "name": "demo.mp4"}},
        }
        for n, event_type in enumerate(types)
    ]
    return json.dumps({"hook": {"uuid": "h1"}, "events": events}).encode()


def request(
    body: bytes, signed_with: str | None = KEY, base64_body: bool = False, header: str | None = None
) -> dict[str, Any]:
    """A Function URL event (payload 2.0), as Lambda builds it."""
    headers = {"content-type": "application/json", "user-agent": "Wistia-Webhooks/0.0.47"}
    if header is not None:
        headers["x-wistia-signature"] = header
    elif signed_with is not None:
        headers["x-wistia-signature"] = signature(body, signed_with)
    return {
        "version": "2.0",
        "rawPath": "/",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "sourceIp": "198.51.100.7"}},
        "body": base64.b64encode(body).decode() if base64_body else body.decode("utf-8", "replace"),
        "isBase64Encoded": base64_body,
    }


def answer(place: Site, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = place.receiver.handle(event)
    assert response["headers"] == {"content-type": "application/json"}
    return response["statusCode"], json.loads(response["body"])


def test_a_signed_webhook_is_applied_and_answered_200() -> None:
    place = site()

    status, body = answer(place, request(webhook_body("media.processing", "media.ready")))

    assert (status, body["applied"]) == (200, 2)
    assert place.stored()["media_status"] == "ready"
    assert place.metrics.counts["WebhookEventsApplied"] == 2


def test_a_base64_body_is_checked_against_the_bytes_wistia_sent() -> None:
    place = site()

    status, _ = answer(place, request(webhook_body("media.ready"), base64_body=True))

    assert status == 200
    assert place.stored()["media_status"] == "ready"


@pytest.mark.parametrize(
    ("signed_with", "header", "why"),
    [
        (None, None, "missing"),
        (None, "", "missing"),
        ("a forger's guess at the key", None, "wrong"),
        (OLD_KEY, None, "wrong"),  # stale: the key before the last rotation
        (None, "0" * 64, "wrong"),
    ],
    ids=["missing", "empty", "forged", "stale", "zeros"],
)
def test_a_missing_forged_or_stale_signature_gets_401_and_changes_nothing(
    signed_with: str | None, header: str | None, why: str
) -> None:
    place = site()
    before = place.stored()

    status, body = answer(place, request(webhook_body("media.failed"), signed_with, header=header))

    assert status == 401
    assert why in body["message"]
    assert place.stored() == before
    assert place.dead_letters.sent == []
    assert place.metrics.counts["WebhookRejected"] == 1
    assert ("warning", "webhook refused") in [(level, msg) for level, msg, _ in place.log.lines]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"not json at all", "not JSON"),
        (b'{"hook": {"uuid": "h1"}}', 'no "events"'),
        (b'{"events": [{"type": "media.ready"}]}', "has no uuid"),
    ],
)
def test_a_signed_body_that_is_not_a_webhook_body_gets_400_and_changes_nothing(
    raw: bytes, why: str
) -> None:
    place = site()
    before = place.stored()

    status, body = answer(place, request(raw))

    assert status == 400
    assert why in body["message"]
    assert place.stored() == before
    assert place.metrics.counts["WebhookBadBody"] == 1


@pytest.mark.parametrize("base64_body", [False, True], ids=["text", "base64"])
def test_a_10_mb_body_gets_400_before_anything_is_hashed_or_read(base64_body: bool) -> None:
    place = site()
    huge = b'{"events": [], "padding": "' + b"x" * (10 * 1024 * 1024) + b'"}'

    status, body = answer(place, request(huge, base64_body=base64_body))

    assert status == 400
    assert "larger than" in body["message"]
    assert place.secret.reads == 0  # refused before the key was even needed


def test_a_body_just_under_the_limit_is_read() -> None:
    place = site()
    raw = webhook_body("media.ready")
    padded = raw[:-1] + b', "padding": "' + b"x" * (LIMIT - len(raw) - 20) + b'"}'
    assert len(padded) <= LIMIT

    status, _ = answer(place, request(padded))

    assert status == 200


def test_a_replayed_body_is_answered_200_and_changes_nothing() -> None:
    # Given a failure delivered, dead-lettered
    place = site()
    event = request(webhook_body("media.processing", "media.failed"))
    assert answer(place, event)[0] == 200
    after_first = place.stored()

    # When the very same signed body comes again (Wistia's retry, or someone replaying it)
    status, body = answer(place, event)

    # Then nothing changes: no second dead letter, the record as it was
    assert (status, body["applied"], body["unchanged"]) == (200, 0, 2)
    assert place.stored() == after_first
    assert len(place.dead_letters.sent) == 1


def test_events_for_media_this_project_did_not_create_are_acknowledged() -> None:
    place = site()
    before = place.stored()

    status, body = answer(place, request(webhook_body("media.ready", hashed_id="notours001")))

    assert (status, body["ignored"], body["applied"]) == (200, 1, 0)
    assert place.stored() == before


def test_a_rotated_key_works_at_once_and_the_old_one_stops_working() -> None:
    # Given the receiver has the old key cached
    place = site()
    place.secret.value = OLD_KEY
    assert answer(place, request(webhook_body("media.processing"), OLD_KEY))[0] == 200

    # When the key is rotated (Wistia signs with the new one; the secret holds it)
    place.secret.value = json.dumps({"secret_key": KEY})
    place.clock.now += SECRET_REFRESH_SECONDS

    # Then a POST signed with the new key is accepted without a redeploy
    assert answer(place, request(webhook_body("media.ready"), KEY))[0] == 200
    # and one signed with the old key is refused
    assert answer(place, request(webhook_body("media.ready"), OLD_KEY))[0] == 401


def test_forged_requests_cannot_make_every_request_a_secrets_manager_call() -> None:
    place = site()

    for _ in range(50):
        answer(place, request(webhook_body("media.ready"), "forged key"))

    # one read for the first request, one refresh within the refresh interval
    assert place.secret.reads == 2
    place.clock.now += SECRET_REFRESH_SECONDS
    answer(place, request(webhook_body("media.ready"), "forged key"))
    assert place.secret.reads == 3


def test_the_placeholder_key_is_never_used_to_check_a_signature() -> None:
    # Anyone who read the template knows the placeholder: a body signed with it is refused
    place = site()
    place.secret.value = json.dumps({"secret_key": PLACEHOLDER_WEBHOOK_KEY})
    before = place.stored()

    status, body = answer(place, request(webhook_body("media.failed"), PLACEHOLDER_WEBHOOK_KEY))

    assert status == 500
    assert body["message"] == "the webhook receiver is not configured"
    assert place.stored() == before
    [(_level, _message, keys)] = [line for line in place.log.lines if line[0] == "error"]
    assert "placeholder" in keys["reason"]


def test_records_that_cannot_be_written_get_500_so_wistia_delivers_again() -> None:
    place = site()
    place.secret.failure = None

    def down(*args: Any, **kwargs: Any) -> Any:
        raise RetryableError("DynamoDB could not write the media's status (ThrottlingException)")

    place.records.apply_media_status = down  # type: ignore[method-assign]

    status, body = answer(place, request(webhook_body("media.ready")))

    assert (status, body["message"]) == (500, "try again later")


def test_a_secret_that_cannot_be_read_gets_500() -> None:
    place = site()
    place.secret.failure = PermanentError("cannot read the secret 'x': AccessDeniedException")

    status, _ = answer(place, request(webhook_body("media.ready")))

    assert status == 500
