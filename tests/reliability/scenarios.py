"""The scenarios: each fault alone, all of them at once, a bulk sync at the rate limit, bad
input and bad configuration.

Wistia's faults are the emulator's (a share of requests, reproducible by seed); AWS's are
aws_faults' (a share of DynamoDB, SQS or S3 calls answered with AWS's own errors).
Durations are scaled down: a Lambda timeout of 10 s, retries 1 and 2 s later (Lambda waits 1
and 2 minutes), a read timeout of 0.4 s against answers 1.2 s late, a rate window of 2 s.
"""

from __future__ import annotations

from dataclasses import replace

from local_stack.aws_faults import AwsFault
from reliability.suite import Scenario
from wistia_emulator import Fault

LATE = 1.2  # seconds an answer takes when it comes later than the read timeout
VERY_LATE = 2.5  # ... and when a repeat delivery has time to arrive before it
SHORT_READ_TIMEOUT = 0.4


def wistia(
    kind: str,
    probability: float,
    seed: int,
    status: int = 503,
    seconds: float = 0.0,
    method: str = "POST",
    path: str = "/",
) -> Fault:
    """A fault on a share of the Upload API's POSTs (or of other requests)."""
    return Fault(
        kind=kind,
        probability=probability,
        seed=seed,
        status=status,
        seconds=seconds,
        match_method=method,
        match_path=path,
    )


def fast(scenario: Scenario) -> Scenario:
    """Lambda's retries sooner, its timeout shorter and 4 instances, for the `make test`
    subset."""
    return replace(
        scenario, retry_delays=(0.5, 1.0), lambda_timeout=8.0, known_gaps=False, instances=4
    )


def ambiguous_pair(
    name: str, about: str, objects: int, fault: Fault, read_timeout: float
) -> list[Scenario]:
    """The same run (same seed, same faults) with the lookup before resubmitting on and off."""
    base = Scenario(
        name=f"{name}, lookup on",
        about=about,
        objects=objects,
        seed=11,
        wistia_faults=(fault,),
        read_timeout=read_timeout,
    )
    return [
        base,
        replace(base, name=f"{name}, lookup off", lookup=False, duplicates_measured=True),
    ]


def full(
    objects: int = 500,
    bulk_objects: int = 2000,
    bulk_limit: int = 30,
    bulk_window: float = 2.0,
    follow_keys: int = 1000,
) -> list[Scenario]:
    """The full run: `objects` in the mixed scenario, a sixth of it in each single fault."""
    single = max(60, objects // 6)
    scenarios = [
        Scenario(
            name="duplicates + reordering",
            about="S3 delivers 30% of the notifications twice, shuffled; 10% of the objects "
            "name a project Wistia does not have (permanent 400)",
            objects=single,
            failing_share=0.1,
        ),
        Scenario(
            name="Wistia 5xx",
            about="35% of the imports answered 500, 502 or 503",
            objects=single,
            seed=2,
            wistia_faults=(
                wistia("status", 0.15, 21, status=500),
                wistia("status", 0.10, 22, status=502),
                wistia("status", 0.10, 23, status=503),
            ),
        ),
        Scenario(
            name="dropped connections",
            about="25% of the imports: the connection closes before Wistia acts",
            objects=single,
            seed=3,
            wistia_faults=(wistia("drop", 0.25, 31),),
        ),
        *ambiguous_pair(
            "lost answers",
            about="20% of the imports: Wistia creates the media, the answer is lost",
            objects=single,
            fault=wistia("drop_after_create", 0.2, 41),
            read_timeout=2.0,
        ),
        *ambiguous_pair(
            "late answers",
            about=f"20% of the imports answered after {LATE} s, the read timeout is "
            f"{SHORT_READ_TIMEOUT} s (Wistia creates the media when it answers)",
            objects=single,
            fault=wistia("latency", 0.2, 51, seconds=LATE),
            read_timeout=SHORT_READ_TIMEOUT,
        ),
        Scenario(
            name="late answers, repeats close behind",
            about=f"every object delivered twice, the repeat 0.5 to 2 s behind the first; 20% of "
            f"the imports answered after {VERY_LATE} s, the read timeout is "
            f"{SHORT_READ_TIMEOUT} s (lookup on)",
            objects=single,
            seed=15,
            duplicate_share=1.0,
            repeats_close_behind=True,
            wistia_faults=(wistia("latency", 0.2, 151, seconds=VERY_LATE),),
            read_timeout=SHORT_READ_TIMEOUT,
        ),
        Scenario(
            name="429 storms",
            about="rate limit 20 requests / 2 s, and two storms: the next 16 requests answered "
            "429 with Retry-After: 2",
            objects=single,
            seed=6,
            rate_limit=20,
            rate_window=2.0,
            storms_at=(0.3, 0.6),
            storm_size=16,
            no_rate_limit_dead_letters=True,
        ),
        Scenario(
            name="token rotated",
            about="the API token is rotated (secret, then Wistia) after 40% of the deliveries",
            objects=single,
            seed=7,
            rotate_token_at=0.4,
        ),
        Scenario(
            name="DynamoDB failing",
            about="25% of DynamoDB calls answer 500 or ThrottlingException, 5% of the updates "
            "answer 500 after they were applied, and half of the writes that record SUBMITTED fail",
            objects=single,
            seed=8,
            aws_faults=(
                AwsFault("dynamodb", probability=0.15, seed=81),
                AwsFault.throttling("dynamodb", probability=0.10, seed=82),
                AwsFault(
                    "dynamodb",
                    operation="UpdateItem",
                    body_contains='"SUBMITTED"',
                    probability=0.5,
                    seed=83,
                ),
                AwsFault(
                    "dynamodb",
                    operation="UpdateItem",
                    probability=0.05,
                    seed=84,
                    after_applying=True,
                ),
            ),
        ),
        Scenario(
            name="SQS failing",
            about="60% of SendMessage calls answer 503; 20% of the objects fail for good "
            "and must reach the dead-letter queue",
            objects=single,
            seed=9,
            failing_share=0.2,
            aws_faults=(
                AwsFault.unavailable("sqs", operation="SendMessage", probability=0.6, seed=91),
            ),
        ),
        Scenario(
            name="dead-letter queue down",
            about="the dead-letter queue refuses every message from 10% to 70% of the run; "
            "20% of the objects fail for good",
            objects=single,
            seed=10,
            failing_share=0.2,
            dlq_outage=(0.1, 0.7),
        ),
        mixed(objects),
        Scenario(
            name="bulk sync at the rate limit",
            about=f"{bulk_objects} objects, no faults, account limit {bulk_limit} requests / "
            f"{bulk_window:g} s",
            objects=bulk_objects,
            seed=12,
            duplicate_share=0.0,
            rate_limit=bulk_limit,
            rate_window=bulk_window,
            # The emulator fetches nothing during the sync, so its work does not slow the
            # function's: the other scenarios check the fetches.
            processing_delay=3600.0,
            no_rate_limit_dead_letters=True,
            report_rate=True,
            timeout=600.0,
            instances=20,
            max_throttled_share=0.01,
        ),
        Scenario(
            name="the request budget alone at the limit",
            about=f"20 callers, each with its own view of the budget, send "
            f"{bulk_objects // 2} Data API requests as fast as it lets them; account limit "
            f"{bulk_limit} requests / {bulk_window:g} s; no S3, no records",
            objects=bulk_objects // 2,
            kind="budget",
            rate_limit=bulk_limit,
            rate_window=bulk_window,
            report_rate=True,
            instances=20,
            max_throttled_share=0.01,
        ),
        killed_holding_budget(bulk_objects, bulk_limit, bulk_window),
        Scenario(
            name="bulk sync through the intake queue",
            about=f"the same {bulk_objects} objects through Intake=Queue: batches of 10, at most "
            f"4 at once, account limit {bulk_limit} requests / {bulk_window:g} s",
            objects=bulk_objects,
            kind="queue",
            seed=17,
            duplicate_share=0.0,
            rate_limit=bulk_limit,
            rate_window=bulk_window,
            processing_delay=3600.0,
            no_rate_limit_dead_letters=True,
            report_rate=True,
            timeout=600.0,
            instances=4,
            max_throttled_share=0.01,
        ),
        webhooks_at_volume(bulk_objects),
        follow_changes(follow_keys),
        Scenario(name="bad input", about="", objects=0, kind="bad-input", seed=13),
        Scenario(
            name="unservable objects",
            about="archive classes and tiers (one restored), a KMS key the signer may not use "
            "(and one it may), SSE-C, keys with dot segments, objects deleted before their "
            "event, beside ordinary objects; 30% duplicate deliveries",
            objects=max(120, objects // 4),
            kind="unservable",
            seed=16,
        ),
        Scenario(
            name="hostile answers and secrets",
            about="16% of the imports refused with a message quoting the signed URL (raw or "
            "percent-encoded), 12% answered a byte every 50 ms, the token secret holding a "
            "line break for a quarter of the run",
            objects=max(120, objects // 4),
            kind="hostile",
            seed=17,
        ),
        Scenario(
            name="bad configuration",
            about="",
            objects=max(30, objects // 15),
            kind="bad-config",
            seed=14,
        ),
    ]
    return scenarios


def killed_holding_budget(objects: int, limit: int, window: float) -> Scenario:
    """The bulk sync with 10% of the invocations killed the moment their slot came. Lambda
    retries a killed invocation a minute later, after its claim's lease (the invocation's
    timeout and 2 s): scaled here, an 8 s timeout and retries 10.5 and 21 s later."""
    return Scenario(
        name="bulk sync, 10% killed holding budget",
        about=f"{objects} objects, account limit {limit} requests / {window:g} s, 20 "
        "instances; 10% of the invocations killed right after their request's slot came, "
        "before sending it",
        objects=objects,
        seed=16,
        duplicate_share=0.0,
        rate_limit=limit,
        rate_window=window,
        processing_delay=3600.0,
        no_rate_limit_dead_letters=True,
        report_rate=True,
        timeout=600.0,
        instances=20,
        kill_share=0.1,
        lambda_timeout=8.0,
        retry_delays=(10.5, 21.0),
        max_throttled_share=0.01,
    )


def webhooks_at_volume(objects: int, seed: int = 16) -> Scenario:
    """Every import followed to its final status: Wistia's webhooks duplicated, reordered and
    dropped as the issue asks, the poller for what they never say."""
    return Scenario(
        name="webhooks: duplicated, reordered, dropped",
        about=f"{objects} imports; Wistia's webhooks: 30% of the events sent twice, 20% held "
        "back behind later ones, 10% never sent; 2% of the files are not media (Wistia fails "
        "them); then the status poller, 5 requests a run",
        objects=objects,
        kind="webhooks",
        seed=seed,
        duplicate_share=0.0,
        failing_share=0.02,
        webhook_duplicate_share=0.3,
        webhook_reorder_share=0.2,
        webhook_drop_share=0.1,
        poll_max_requests=5,
        timeout=900.0,
    )


def follow_changes(keys: int, seed: int = 18) -> Scenario:
    """Overwrites and deletions followed (ON_OVERWRITE=replace, ON_DELETE=delete): as the
    issue asks, keys overwritten 0-3 times and 20% deleted, events duplicated and reordered."""
    return Scenario(
        name="follow changes: overwrites + deletions",
        about=f"{keys} keys, each ready at Wistia, then overwritten 0-3 times (seeded) and 20% "
        "deleted; every event delivered once or twice (50%), all of them shuffled; "
        "ON_OVERWRITE=replace, ON_DELETE=delete; then the status poller until no swap is due",
        objects=keys,
        kind="follow",
        seed=seed,
        duplicate_share=0.5,
        max_overwrites=3,
        delete_share=0.2,
        instances=6,
        timeout=900.0,
    )


def mixed(objects: int, seed: int = 5) -> Scenario:
    return Scenario(
        name="everything at once",
        about="30% duplicates; Wistia 5xx, drops, lost and late answers, 429s and a storm; "
        "the token rotated; DynamoDB, SQS and S3 errors; the dead-letter queue down for a while",
        objects=objects,
        seed=seed,
        failing_share=0.05,
        wistia_faults=(
            wistia("status", 0.05, seed * 10 + 1, status=503),
            wistia("drop", 0.04, seed * 10 + 2),
            wistia("drop_after_create", 0.04, seed * 10 + 3),
            wistia("latency", 0.03, seed * 10 + 4, seconds=LATE),
            wistia("status", 0.1, seed * 10 + 9, status=503, method="GET", path="/v1/*"),
        ),
        read_timeout=SHORT_READ_TIMEOUT,
        rate_limit=30,
        rate_window=2.0,
        storms_at=(0.5,),
        rotate_token_at=0.35,
        aws_faults=(
            AwsFault("dynamodb", probability=0.08, seed=seed * 10 + 5),
            AwsFault.throttling("dynamodb", probability=0.05, seed=seed * 10 + 6),
            AwsFault.unavailable(
                "sqs", operation="SendMessage", probability=0.3, seed=seed * 10 + 7
            ),
            AwsFault.throttling("s3", operation="HEAD", probability=0.1, seed=seed * 10 + 8),
        ),
        dlq_outage=(0.6, 0.8),
        no_rate_limit_dead_letters=True,
    )


def quick(objects: int = 60) -> list[Scenario]:
    """The fast subset `make test` runs: each family of faults once, no known gap."""
    scenarios = [
        Scenario(
            name="duplicates + Wistia faults",
            about="30% duplicates, reordered; Wistia 5xx, drops and lost answers (lookup on); "
            "10% of the objects fail for good",
            objects=objects,
            seed=101,
            failing_share=0.1,
            wistia_faults=(
                wistia("status", 0.1, 1011, status=503),
                wistia("drop", 0.08, 1012),
                wistia("drop_after_create", 0.1, 1013),
            ),
        ),
        Scenario(
            name="429 storm + token rotated",
            about="rate limit 40 / 2 s, a storm of 8 429s (Retry-After: 1), the token rotated "
            "mid-run",
            objects=objects,
            seed=102,
            rate_limit=40,
            rate_window=2.0,
            storms_at=(0.3,),
            storm_size=8,
            storm_retry_after=1,
            rotate_token_at=0.5,
            no_rate_limit_dead_letters=True,
        ),
        Scenario(
            name="AWS failing",
            about="DynamoDB claims and SQS sends failing, then the dead-letter queue down; "
            "20% of the objects fail for good",
            objects=objects,
            seed=103,
            failing_share=0.2,
            aws_faults=(
                # Claims only: a failed SUBMITTED write is a known bug, shown on its own.
                AwsFault(
                    "dynamodb",
                    operation="UpdateItem",
                    body_contains=":in_progress",
                    probability=0.2,
                    seed=1031,
                ),
                AwsFault.throttling(
                    "dynamodb",
                    operation="UpdateItem",
                    body_contains=":in_progress",
                    probability=0.2,
                    seed=1032,
                ),
                AwsFault.unavailable("sqs", operation="SendMessage", probability=0.4, seed=1033),
            ),
            dlq_outage=(0.2, 0.5),
        ),
        replace(webhooks_at_volume(objects, seed=106), failing_share=0.05),
        Scenario(name="bad input", about="", objects=0, kind="bad-input", seed=104),
        Scenario(name="unservable objects", about="", objects=40, kind="unservable", seed=106),
        Scenario(
            name="hostile answers and secrets", about="", objects=40, kind="hostile", seed=107
        ),
        Scenario(name="bad configuration", about="", objects=12, kind="bad-config", seed=105),
    ]
    return [fast(scenario) for scenario in scenarios]
