"""`s3-to-wistia doctor`: checks a deployment end to end, importing nothing; one line per
check, OK or what to fix.

Each check reads only (Secrets Manager, Lambda's configuration, DynamoDB's and SQS's
descriptions, the bucket's notification configuration, EventBridge's rules) plus at most
two calls to Wistia that create nothing: one Data API read, and only when that is refused,
an empty Upload API request to tell an upload-only token from a wrong one. A check that
cannot run (its resource missing) says so and the others still run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from s3_to_wistia.adapters.secrets import PLACEHOLDER_TOKEN, signing_keys_from_secret
from s3_to_wistia.cli.app import command
from s3_to_wistia.cli.errors import FAILED, OK, CliError, explain
from s3_to_wistia.cli.output import Output
from s3_to_wistia.cli.resources import (
    API_URL,
    BUCKET,
    FUNCTION,
    QUEUE_URL,
    TABLE,
    TOKEN_SECRET,
    UPLOAD_URL,
    WEBHOOK_SECRET,
    WEBHOOK_URL,
    Target,
)
from s3_to_wistia.errors import PermanentError, WistiaUnreachable

GOOD, WARN, FIX, SKIP = "ok", "warn", "fix", "skip"
LABELS = {GOOD: "OK  ", WARN: "WARN", FIX: "FIX ", SKIP: "--  "}
STYLES = {GOOD: "green", WARN: "yellow", FIX: "bold red", SKIP: "dim"}
# Lambda's role credentials: a URL signed with them dies with them, within hours.
ROLE_URL_HOURS = 1
_WISTIA_CALL_SECONDS = 15


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str


class Findings(Exception):
    """A check's verdict, raised from deep inside it."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@command(
    "doctor",
    needs=[TOKEN_SECRET, TABLE, QUEUE_URL, FUNCTION, BUCKET, API_URL, UPLOAD_URL, WEBHOOK_SECRET],
    json_output=True,
    short_help="Check a deployment end to end (imports nothing): one line each, OK or what to fix.",
)
def doctor(target: Target, out: Output) -> int:
    """Check a deployment end to end without importing anything: the Wistia token secret
    reads, is not the stack's placeholder and Wistia accepts it (one Data API read); the
    signing credentials (when configured) and the URL lifetime; the records table, its
    index and the dead-letter queue; that the bucket's notification (new bucket) or the
    EventBridge rule (existing bucket) reaches the function; the webhook secret, once the
    webhook receiver is deployed. Each line says OK, or what to fix.

    Exit code 0 when nothing needs fixing (warnings allowed), 1 otherwise.
    """
    doctor = Doctor(target, out)
    [(first, find_stack), *rest] = doctor.steps()
    checks = [doctor.check(first, find_stack)]
    if checks[0].status == FIX:
        # No stack to look at: every other check would say the same.
        checks += [Check(name, SKIP, "not checked: no stack") for name, _ in rest]
        doctor.show(Check("", SKIP, f"the {len(rest)} other checks need a stack to check"))
    else:
        checks += [doctor.check(name, step) for name, step in rest]
    fixes = sum(check.status == FIX for check in checks)
    warnings = sum(check.status == WARN for check in checks)
    verdict = "nothing to fix" if not fixes else f"{fixes} to fix"
    out.summary(f"{verdict}" + (f", {warnings} warning(s)" if warnings else ""))
    out.result(
        {
            "ok": not fixes,
            "checks": [{"check": c.name, "status": c.status, "detail": c.detail} for c in checks],
        }
    )
    return FAILED if fixes else OK


class Doctor:
    """The checks, in the order an operator fixes things."""

    def __init__(self, target: Target, out: Output) -> None:
        self.target = target
        self.out = out
        self._raw_token: str | None = None
        self._token: str | None = None

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("stack", self.stack),
            ("token secret", self.token_secret),
            ("token", self.token),
            ("Wistia", self.wistia),
            ("URL signing", self.signing),
            ("table", self.table),
            ("queue", self.queue),
            ("events", self.events),
            ("webhooks", self.webhooks),
        ]

    def check(self, name: str, step: Callable[[], str]) -> Check:
        """Run one check; its line is printed at once."""
        try:
            found = Check(name, GOOD, step())
        except Findings as findings:
            found = Check(name, findings.status, findings.detail)
        except Exception as error:
            explained = explain(error)
            if explained is None:
                raise
            found = Check(name, FIX, explained.message)
        return self.show(found)

    def show(self, check: Check) -> Check:
        self.out.say(
            f"{LABELS[check.status]}  {check.name:<13} {check.detail}", STYLES[check.status]
        )
        return check

    # --- the checks ------------------------------------------------------------------------

    def stack(self) -> str:
        target = self.target
        if target.options.local:
            return f"local: {target.local.described_as}" + _refuse_snapshot(target)
        given = [name for name, value in target.options.given.items() if value]
        try:
            outputs = target.stack_outputs()
        except CliError as error:
            if given:
                raise Findings(WARN, f"{error.message} (checking the resources given)") from None
            raise
        return f"stack {target.stack_name!r} ({len(outputs)} outputs) in {target.region}"

    def token_secret(self) -> str:
        secret_id = self.target.value(TOKEN_SECRET)
        answer = self._secret(secret_id, "the Wistia token secret")
        self._raw_token = answer
        return f"{secret_id} reads"

    def token(self) -> str:
        from s3_to_wistia.adapters.secrets import token_from_secret

        raw = self._raw_token
        if raw is None:
            raise Findings(SKIP, "not checked: the token secret does not read")
        secret_id = self.target.value(TOKEN_SECRET)
        self.out.hide(raw)
        try:
            self._token = token_from_secret(raw, secret_id)
        except PermanentError as error:
            if PLACEHOLDER_TOKEN in str(raw):
                raise Findings(
                    FIX,
                    f"the secret still holds the placeholder the stack created: paste your "
                    f"Wistia API token: aws secretsmanager put-secret-value --secret-id "
                    f'{secret_id} --secret-string \'{{"token": "..."}}\'',
                ) from None
            raise Findings(FIX, f"{error.reason}: put the token alone in it") from None
        self.out.hide(self._token)
        return "holds a token (not the stack's placeholder)"

    def wistia(self) -> str:
        """Two calls that create nothing: a Data API read, and an Upload API request with
        nothing to import, which Wistia refuses (400) only once it accepted the token."""
        if self._token is None:
            raise Findings(SKIP, "not checked: no token to try")
        wistia = self.target.wistia(connect_timeout=5, read_timeout=_WISTIA_CALL_SECONDS)
        try:
            reads = wistia.check_data_api(self._token).status
            uploads = wistia.check_upload_api(self._token).status
        except WistiaUnreachable as error:
            raise Findings(
                FIX, f"Wistia is unreachable: {error.reason}: check --api-url / --upload-url"
            ) from None
        return _token_rights(reads, uploads, self.target.value(TOKEN_SECRET))

    def signing(self) -> str:
        environment = self.target.function_configuration().environment
        expires = int(environment.get("PRESIGNED_URL_EXPIRES") or 21600)
        lifetime = _duration(expires)
        secret_id = environment.get("SIGNING_CREDENTIALS_SECRET")
        if not secret_id:
            if expires > ROLE_URL_HOURS * 3600:
                raise Findings(
                    WARN,
                    f"URLs ask to live {lifetime} but are signed with the function's role, "
                    "whose credentials die sooner (hours at most): a slow Wistia fetch can "
                    "meet an expired URL; set SigningCredentialsSecretArn for up to 7 days",
                )
            return f"URLs live {lifetime}, signed with the function's role"
        raw = self._secret(secret_id, "the signing credentials secret")
        try:
            key_id, secret_key = signing_keys_from_secret(raw, secret_id)
        except PermanentError as error:
            raise Findings(FIX, error.reason) from None
        self.out.hide(secret_key)
        who = self._identity(key_id, secret_key)
        return f"URLs live {lifetime}, signed with the keys in {secret_id} ({who})"

    def table(self) -> str:
        from botocore.exceptions import ClientError

        from s3_to_wistia.adapters.records import MEDIA_INDEX

        name = self.target.value(TABLE)
        try:
            table = self.target.client("dynamodb").describe_table(TableName=name)["Table"]
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                raise Findings(FIX, f"no table {name!r}: deploy the stack (sam deploy)") from None
            raise
        indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes") or []}
        if MEDIA_INDEX not in indexes:
            raise Findings(
                FIX,
                f"table {name} has no index {MEDIA_INDEX}: update the stack (sam deploy)",
            )
        states = {table.get("TableStatus"), indexes[MEDIA_INDEX].get("IndexStatus", "ACTIVE")}
        if states != {"ACTIVE"}:
            raise Findings(WARN, f"table {name} is {'/'.join(sorted(map(str, states)))}: wait")
        return f"{name} and its index {MEDIA_INDEX} (about {table.get('ItemCount', 0)} records)"

    def queue(self) -> str:
        from botocore.exceptions import ClientError

        url = self.target.value(QUEUE_URL)
        try:
            attributes = self.target.client("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
        except ClientError as error:
            if "NonExistentQueue" in _code(error):
                raise Findings(FIX, f"no dead-letter queue {url}: deploy the stack") from None
            raise
        waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
        if waiting:
            raise Findings(
                WARN,
                f"{waiting} dead letter(s) wait in {url}: `s3-to-wistia redrive --dry-run` "
                "shows them",
            )
        return f"the dead-letter queue is empty ({url})"

    def events(self) -> str:
        bucket = self.target.value(BUCKET)
        s3 = self.target.client("s3")
        configuration = s3.get_bucket_notification_configuration(Bucket=bucket)
        if self.target.options.local:
            return _local_events(bucket, configuration)
        function = self.target.function_configuration()
        for notification in configuration.get("LambdaFunctionConfigurations") or []:
            arn = notification.get("LambdaFunctionArn")
            if _same_function(arn, function.arn) and _created_events(notification):
                return f"bucket {bucket} notifies {function.name} of every new object"
        return self._eventbridge(bucket, configuration, function.arn, function.name)

    def _eventbridge(
        self, bucket: str, configuration: dict[str, Any], arn: str | None, name: str
    ) -> str:
        """An existing bucket: an enabled EventBridge rule for it, and its events on."""
        events = self.target.client("events")
        rules = events.list_rule_names_by_target(TargetArn=arn or "").get("RuleNames") or []
        enabled = [
            rule
            for rule in rules
            if (found := events.describe_rule(Name=rule)).get("State") == "ENABLED"
            and bucket in str(found.get("EventPattern", ""))
        ]
        if not enabled:
            raise Findings(
                FIX,
                f"nothing sends bucket {bucket}'s new objects to {name}: no S3 notification "
                "and no enabled EventBridge rule for it: deploy the stack again (sam deploy)",
            )
        if "EventBridgeConfiguration" not in configuration:
            raise Findings(
                FIX,
                f"EventBridge rule {enabled[0]} waits for bucket {bucket}'s events, but the "
                'bucket does not send them: turn on its "Amazon EventBridge" event '
                "notifications (S3 console, Properties, Event notifications)",
            )
        return f"EventBridge rule {enabled[0]} sends bucket {bucket}'s new objects to {name}"

    def webhooks(self) -> str:
        target = self.target
        url = None if target.options.local else self._outputs().get(WEBHOOK_URL.output or "")
        secret_id = target.optional(WEBHOOK_SECRET)
        if not url and not secret_id:
            raise Findings(
                SKIP,
                "not deployed (no WebhookUrl output): processing status "
                "comes from the poller alone, if at all",
            )
        if not secret_id:
            raise Findings(WARN, f"cannot find the webhook secret: pass {WEBHOOK_SECRET.flag}")
        key = _webhook_key(self._secret(secret_id, "the webhook secret"))
        self.out.hide(key)
        if not key or key.startswith("PASTE_"):
            raise Findings(
                FIX,
                f"the webhook secret {secret_id} holds no key yet: paste the secret key of "
                "Wistia's webhook (Account Settings > Webhooks) into it",
            )
        where = f"; Wistia's webhook must POST to {url}" if url else ""
        return f"the webhook secret {secret_id} is set{where}"

    # --- helpers ---------------------------------------------------------------------------

    def _outputs(self) -> dict[str, str]:
        try:
            return self.target.stack_outputs()
        except CliError:
            return {}  # resources given by flags, no stack: said by the stack check

    def _secret(self, secret_id: str, what: str) -> str:
        from botocore.exceptions import ClientError

        try:
            answer = self.target.client("secretsmanager").get_secret_value(SecretId=secret_id)
        except ClientError as error:
            code = _code(error)
            if code == "ResourceNotFoundException":
                raise Findings(
                    FIX, f"{what} {secret_id!r} does not exist (or has no value)"
                ) from None
            if code in ("AccessDeniedException", "DecryptionFailure"):
                raise Findings(
                    FIX,
                    f"not allowed to read {what} {secret_id!r}: your AWS identity needs "
                    "secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)",
                ) from None
            raise
        raw = answer.get("SecretString")
        if raw is None:
            raw = bytes(answer.get("SecretBinary", b"")).decode("utf-8", errors="replace")
        self.out.hide(str(raw))
        return str(raw)

    def _identity(self, key_id: str, secret_key: str) -> str:
        """Whose keys these are (STS), proving AWS still accepts them."""
        from botocore.exceptions import ClientError

        session = self.target.session
        sts = session.client("sts", aws_access_key_id=key_id, aws_secret_access_key=secret_key)
        try:
            return str(sts.get_caller_identity()["Arn"])
        except ClientError as error:
            raise Findings(
                FIX,
                f"AWS refuses the signing keys ({_code(error)}): put live keys of the signing "
                "user into the secret",
            ) from None


def _token_rights(reads: int, uploads: int, secret_id: str) -> str:
    """What Wistia's two answers say of the token's rights."""
    if uploads == 401 and reads == 401:
        raise Findings(
            FIX,
            "Wistia rejects the token (401 from both of its APIs): paste a valid API token "
            f"(Wistia: Account Settings > API Access) into {secret_id}",
        )
    if uploads == 401:
        raise Findings(
            FIX,
            "a read-only token: Wistia lets it read, but refuses it imports (401 from the "
            'Upload API): give it "Upload media" rights, or paste another',
        )
    if reads == 401:
        raise Findings(
            WARN,
            "an upload-only token: Wistia accepts it for imports, but its Data API refuses it "
            "(401), so the search for a lost answer and the processing status cannot read "
            'Wistia: give it "Read all data" rights too',
        )
    if reads != 200 or uploads >= 500 or uploads == 429:
        raise Findings(
            WARN, f"Wistia answered {reads} (Data API) and {uploads} (Upload API): try again"
        )
    return "Wistia accepts the token for imports (Upload API) and reads (Data API)"


def _refuse_snapshot(target: Target) -> str:
    if not target.local.is_up:
        raise Findings(
            FIX,
            f"{target.local.described_as}: nothing to check; start `make local` and run this again",
        )
    return ""


def _local_events(bucket: str, configuration: dict[str, Any]) -> str:
    queues = configuration.get("QueueConfigurations") or []
    if any(_created_events(q) for q in queues):
        return (
            f"bucket {bucket} notifies the local stack's delivery queue, which stands in for "
            "Lambda's S3 trigger"
        )
    raise Findings(FIX, f"bucket {bucket} notifies nothing: restart `make local`")


def _created_events(notification: dict[str, Any]) -> bool:
    return any(str(e).startswith("s3:ObjectCreated:") for e in notification.get("Events") or [])


def _same_function(arn: Any, function_arn: str | None) -> bool:
    """The notification names the function (maybe one of its versions or aliases)."""
    if not arn or not function_arn:
        return False
    return str(arn) == function_arn or str(arn).startswith(function_arn + ":")


def _webhook_key(raw: str) -> str:
    """Wistia's webhook secret key: the SecretString itself, or {"secret_key": "..."}."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return ""
        return str(document.get("secret_key", "")).strip() if isinstance(document, dict) else ""
    return text


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds} s"


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
