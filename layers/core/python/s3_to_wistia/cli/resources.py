"""Which deployment a command works on: one place that finds the bucket, table, queue,
function, token secret and Wistia URLs for every subcommand.

Each value comes from the first of:

1. its own flag (`--table NAME`, `--token-secret ARN`, ...);
2. with `--local`: the local stack (see `find_local_target`: the one `make local` keeps up,
   else your own through the function's variables, else the snapshot `make run` left);
   otherwise: the CloudFormation stack's Outputs (`--stack NAME`, else $S3_TO_WISTIA_STACK,
   else samconfig.toml's stack_name (`--config-env` picks its environment), else
   "s3-to-wistia"), read once and only when a needed value has no flag;
3. its default (Wistia's public URLs; never under --local).

A subcommand declares the resources it needs (`@command(needs=[TABLE, TOKEN_SECRET])`); it
gets a flag for each, they are all resolved before it runs (so a missing one fails before
any work is done), and it reads them as `target.value(TABLE)`. A new stack output is one
more `Resource` below.

The Wistia token is read from the token secret the function uses (Secrets Manager), with
the function's own parsing, never from the command line: `target.wistia_token()`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

from s3_to_wistia.adapters.secrets import token_from_secret
from s3_to_wistia.adapters.wistia import WistiaClient
from s3_to_wistia.cli.errors import CliError, UsageProblem, explain
from s3_to_wistia.cli.local import LocalStack, Snapshot, newest_snapshot, running_stack
from s3_to_wistia.cli.output import Output
from s3_to_wistia.config import is_loopback
from s3_to_wistia.errors import PermanentError

DEFAULT_STACK = "s3-to-wistia"
STACK_ENV = "S3_TO_WISTIA_STACK"
# The repository, when the CLI runs from a checkout (its samconfig.toml names the stack).
REPOSITORY = Path(__file__).resolve().parents[5]
LOCAL_REGION = "us-east-1"
NO_LOCAL_STACK = (
    "no local stack is up: start one with `make local` (it stays up until Ctrl-C), or run "
    "`make run`, after which `status --local` reads what it left"
)


@dataclass(frozen=True)
class Resource:
    """One thing a command may need, and everywhere it can come from."""

    name: str  # the click parameter, e.g. "queue_url"
    flag: str
    metavar: str
    help: str
    output: str | None = None  # the stack's CloudFormation output
    local_env: str | None = None  # the variable --local reads (the function's own name)
    default: str | None = None  # used when nothing else gives it (not under --local)
    url: bool = False  # must be https, or http to a loopback host


BUCKET = Resource(
    "bucket", "--bucket", "NAME", "the media bucket", "BucketName", "S3_TO_WISTIA_BUCKET"
)
FUNCTION = Resource(
    "function",
    "--function",
    "NAME",
    "the import function",
    "ImportFunctionName",
    "S3_TO_WISTIA_FUNCTION",
)
TABLE = Resource(
    "table", "--table", "NAME", "the import records table", "ImportsTableName", "IMPORTS_TABLE_NAME"
)
QUEUE_URL = Resource(
    "queue_url",
    "--queue-url",
    "URL",
    "the dead-letter queue",
    "DeadLetterQueueUrl",
    "DEAD_LETTER_QUEUE_URL",
)
TOKEN_SECRET = Resource(
    "token_secret",
    "--token-secret",
    "ID",
    "the Secrets Manager secret (name or ARN) that holds the Wistia token",
    "WistiaTokenSecretArn",
    "WISTIA_TOKEN_SECRET",
)
UPLOAD_URL = Resource(
    "upload_url",
    "--upload-url",
    "URL",
    "Wistia's Upload API",
    local_env="WISTIA_UPLOAD_URL",
    default="https://upload.wistia.com/",
    url=True,
)
API_URL = Resource(
    "api_url",
    "--api-url",
    "URL",
    "Wistia's Data API",
    local_env="WISTIA_API_URL",
    default="https://api.wistia.com/",
    url=True,
)
WEBHOOK_URL = Resource(
    "webhook_url",
    "--webhook-url",
    "URL",
    "the webhook receiver's URL, to paste into Wistia",
    "WebhookUrl",
)
WEBHOOK_SECRET = Resource(
    "webhook_secret",
    "--webhook-secret",
    "ID",
    "the Secrets Manager secret (name or ARN) that holds Wistia's webhook secret key",
    "WistiaWebhookSecretArn",
    "WISTIA_WEBHOOK_SECRET",
)
BACKFILL_FUNCTION = Resource(
    "backfill_function",
    "--backfill-function",
    "ARN",
    "the function S3 Batch Operations invokes for a backfill",
    "BackfillFunctionArn",
    "S3_TO_WISTIA_BACKFILL_FUNCTION",
)
BACKFILL_ROLE = Resource(
    "backfill_role",
    "--backfill-role",
    "ARN",
    "the IAM role backfill jobs run with",
    "BackfillRoleArn",
    "S3_TO_WISTIA_BACKFILL_ROLE",
)
REPORTS_BUCKET = Resource(
    "reports_bucket",
    "--reports-bucket",
    "NAME",
    "the bucket for backfill manifests and completion reports",
    "BackfillReportsBucket",
    "S3_TO_WISTIA_REPORTS_BUCKET",
)
BACKFILL_RATE = Resource(
    "backfill_rate",
    "--backfill-rate",
    "N",
    "the backfill's share of the account's Wistia requests a minute",
    "BackfillRequestsPerMinute",
    "BACKFILL_REQUESTS_PER_MINUTE",
    default="240",
)
RESOURCES = (
    BUCKET,
    FUNCTION,
    TABLE,
    QUEUE_URL,
    TOKEN_SECRET,
    UPLOAD_URL,
    API_URL,
    WEBHOOK_URL,
    WEBHOOK_SECRET,
    BACKFILL_FUNCTION,
    BACKFILL_ROLE,
    REPORTS_BUCKET,
    BACKFILL_RATE,
)


@dataclass(frozen=True)
class TargetOptions:
    """What the command line said about where to work."""

    stack: str | None = None
    local: bool = False
    region: str | None = None
    profile: str | None = None
    config_env: str | None = None  # samconfig.toml's environment, for the default stack
    # Resource name -> the value of its flag (None: not given).
    given: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class LocalTarget:
    """Where --local points: a local stack that is up (make local's, or a make run still
    running), your own (the function's variables and AWS_ENDPOINT_URL), or the snapshot a
    stopped one left, which only reading commands can use."""

    values: Mapping[str, str]
    described_as: str  # words for the operator: which one, and since when
    stack: LocalStack | None = None
    snapshot: Snapshot | None = None

    @property
    def is_up(self) -> bool:
        return self.snapshot is None


@dataclass(frozen=True)
class FunctionConfiguration:
    """The import function as deployed: what the CLI needs to run its code path."""

    name: str
    arn: str | None
    environment: Mapping[str, str]
    timeout: float


class Target:
    """The deployment one command run works on: its resources, AWS session and token."""

    def __init__(
        self,
        options: TargetOptions,
        needs: Sequence[Resource],
        out: Output,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if options.local and options.stack:
            raise UsageProblem("--local and --stack name different stacks: give one of them")
        self.options = options
        self._needs = tuple(needs)
        self._out = out
        self._environ = os.environ if environ is None else environ
        self._values: dict[str, str] = {}
        self._outputs: dict[str, str] | None = None
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._local: LocalTarget | None = None
        self._function: FunctionConfiguration | None = None

    # --- what the command reads ------------------------------------------------------------

    def resolve(self) -> None:
        """Find every resource the command declared, or fail naming the first one missing.
        The flags are checked first: a bad flag is reported before any AWS call."""
        given = [r for r in self._needs if self.options.given.get(r.name)]
        for resource in [*given, *(r for r in self._needs if r not in given)]:
            self.value(resource)

    def value(self, resource: Resource) -> str:
        """The resource's value (flag, then the stack or the local stack, then default)."""
        if resource.name not in self._values:
            self._values[resource.name] = self._find(resource)
        return self._values[resource.name]

    def optional(self, resource: Resource) -> str | None:
        """The resource's value, or None when the stack does not have it."""
        try:
            return self.value(resource)
        except CliError:
            return None

    @property
    def stack_name(self) -> str:
        return (
            self.options.stack
            or self._environ.get(STACK_ENV)
            or default_stack_name(config_env=self.options.config_env or "default")
        )

    @property
    def local(self) -> LocalTarget:
        """The local stack --local works on (found once); CliError when there is none."""
        if self._local is None:
            self._local = find_local_target(self._environ)
        return self._local

    def stack_outputs(self) -> dict[str, str]:
        """The deployed stack's Outputs (read once)."""
        return dict(self._stack_outputs())

    def function_configuration(self) -> FunctionConfiguration:
        """The import function's environment and timeout: the deployed function's own (read
        from Lambda), or the local stack's."""
        if self._function is None:
            self._function = self._read_function()
        return self._function

    # --- AWS -----------------------------------------------------------------------------

    @property
    def session(self) -> Any:
        """The boto3 session: --profile and --region, else your AWS configuration; under
        --local, one whose clients talk to the local stack."""
        if self._session is None:
            import boto3

            if self.options.local:
                self._session = self._local_session()
            else:
                self._session = boto3.session.Session(
                    region_name=self.options.region, profile_name=self.options.profile
                )
        return self._session

    @property
    def region(self) -> str | None:
        return str(self.session.region_name) if self.session.region_name else None

    def client(self, service: str, **config: Any) -> Any:
        """One boto3 client per service and configuration for the run; `config` goes to
        botocore's Config (a long synchronous invoke needs its own read timeout)."""
        key = f"{service} {sorted(config.items())}"
        if key not in self._clients:
            from botocore.config import Config

            settings = {"connect_timeout": 5, "read_timeout": 30, "retries": {"mode": "standard"}}
            self._clients[key] = self.session.client(
                service, config=Config(**{**settings, **config})
            )
        return self._clients[key]

    # --- Wistia --------------------------------------------------------------------------

    def wistia_token(self, secret_id: str | None = None) -> str:
        """The token from the function's token secret (hidden from all output from now on);
        `secret_id` names another than the TOKEN_SECRET resource."""
        from botocore.exceptions import ClientError

        secret_id = secret_id or self.value(TOKEN_SECRET)
        try:
            answer = self.client("secretsmanager").get_secret_value(SecretId=secret_id)
        except ClientError as error:
            raise _secret_error(error, secret_id, self.region) from error
        raw = answer.get("SecretString")
        if raw is None:
            raw = answer.get("SecretBinary", b"")
        try:
            token = token_from_secret(raw, secret_id)
        except PermanentError as error:
            raise CliError(
                f"{error.reason}: put the token in it: aws secretsmanager put-secret-value "
                f'--secret-id {secret_id} --secret-string \'{{"token": "..."}}\''
            ) from None
        self._out.hide(token)
        return token

    def wistia(self, connect_timeout: float = 10.0, read_timeout: float = 60.0) -> WistiaClient:
        """A Wistia client for the run's Upload and Data API URLs. A command declares the
        one(s) it calls (UPLOAD_URL, API_URL in `needs`); the other is never asked for."""
        http = urllib3.PoolManager(maxsize=4, retries=False)
        urls = {
            resource.name: self.value(resource) if resource in self._needs else resource.default
            for resource in (UPLOAD_URL, API_URL)
        }
        return WistiaClient(
            http,
            str(urls[UPLOAD_URL.name]),
            urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            api_url=str(urls[API_URL.name]),
        )

    # --- finding values --------------------------------------------------------------------

    def _find(self, resource: Resource) -> str:
        given = self.options.given.get(resource.name)
        if given:
            return _checked(resource, given, resource.flag, UsageProblem)
        if self.options.local:
            found = self.local.values.get(resource.name)
            if found:
                return _checked(resource, found, f"--local's {resource.local_env}", CliError)
            where = f" or set {resource.local_env}" if resource.local_env else ""
            raise CliError(f"--local does not know {resource.help}: pass {resource.flag}{where}")
        if resource.output is not None:
            found = self._stack_outputs().get(resource.output)
            if found:
                return _checked(resource, found, f"the stack's output {resource.output}", CliError)
        if resource.default is not None:
            return resource.default
        raise CliError(
            f"stack {self.stack_name!r} has no output {resource.output}: pass "
            f"{resource.flag} {resource.metavar}"
        )

    def _read_function(self) -> FunctionConfiguration:
        if self.options.local:
            return self._local_function()
        from botocore.exceptions import ClientError

        name = self.value(FUNCTION)
        try:
            answer = self.client("lambda").get_function_configuration(FunctionName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise CliError(
                    f"no function {name!r} in {self.region or 'this region'}: check --function "
                    "/ --stack / --region"
                ) from None
            raise
        return FunctionConfiguration(
            name=str(answer.get("FunctionName") or name),
            arn=answer.get("FunctionArn"),
            environment=dict((answer.get("Environment") or {}).get("Variables") or {}),
            timeout=float(answer.get("Timeout") or 60),
        )

    def _local_function(self) -> FunctionConfiguration:
        local = self.local
        if local.stack is not None:
            return FunctionConfiguration(
                name=f"ImportFunction ({local.stack.started_by})",
                arn=None,
                environment=dict(local.stack.function_environment),
                timeout=local.stack.function_timeout,
            )
        self._refuse_snapshot()
        # Your own local stack: the function's variables are this environment's.
        return FunctionConfiguration("the local function", None, dict(self._environ), 60.0)

    def _local_session(self) -> Any:
        import boto3

        local = self.local
        self._refuse_snapshot()
        if local.stack is None:
            self._check_local_endpoint()
            return boto3.session.Session(
                region_name=self.options.region or LOCAL_REGION,
                profile_name=self.options.profile,
                **self._local_credentials(),
            )
        stack = local.stack
        if not is_loopback(urlsplit(stack.endpoint_url).hostname or ""):
            raise CliError(f"{stack.path} names an endpoint off this machine: remove it")
        session = boto3.session.Session(
            region_name=self.options.region or stack.region,
            aws_access_key_id=stack.access_key_id,
            aws_secret_access_key=stack.secret_access_key,
        )
        return EndpointSession(session, stack.endpoint_url)

    def _refuse_snapshot(self) -> None:
        if not self.local.is_up:
            raise CliError(
                f"this needs the local stack up, and there is only {self.local.described_as}: "
                "start `make local` (it stays up until Ctrl-C) and run this again"
            )

    def _stack_outputs(self) -> dict[str, str]:
        if self._outputs is None:
            from botocore.exceptions import ClientError

            try:
                answer = self.client("cloudformation").describe_stacks(StackName=self.stack_name)
            except ClientError as error:
                if "does not exist" in str(error.response.get("Error", {}).get("Message", "")):
                    raise self._no_such_stack() from None
                raise
            stacks = answer.get("Stacks") or [{}]
            self._outputs = {
                o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []
            }
        return self._outputs

    def _no_such_stack(self) -> CliError:
        how = "" if self.options.stack else f" (the default; set {STACK_ENV} or pass --stack)"
        flags = ", ".join(r.flag for r in self._needs if r.output and r.default is None)
        instead = f", or give {flags}" if flags else ""
        return CliError(
            f"no stack {self.stack_name!r}{how} in {self.region or 'your default region'}: "
            f"pass --stack NAME (and --region){instead}"
        )

    def _check_local_endpoint(self) -> None:
        endpoint = self._environ.get("AWS_ENDPOINT_URL", "")
        host = urlsplit(endpoint).hostname or ""
        if not endpoint or not is_loopback(host):
            raise CliError(
                "--local needs the local stack's AWS endpoint on this machine: set "
                "AWS_ENDPOINT_URL=http://127.0.0.1:PORT (moto's server)"
            )

    def _local_credentials(self) -> dict[str, str]:
        # moto accepts any key; a machine without AWS credentials can still use --local.
        if not self.options.local or self._environ.get("AWS_ACCESS_KEY_ID"):
            return {}
        return {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


class EndpointSession:
    """A boto3 session whose every client talks to one endpoint: a local stack's moto.
    (boto3 sessions take no endpoint of their own; the function's wiring asks this one for
    its clients like any session.)"""

    def __init__(self, session: Any, endpoint_url: str) -> None:
        self._session = session
        self.endpoint_url = endpoint_url

    @property
    def region_name(self) -> str | None:
        return self._session.region_name

    def client(self, service: str, **options: Any) -> Any:
        options.setdefault("endpoint_url", self.endpoint_url)
        return self._session.client(service, **options)

    def get_credentials(self) -> Any:
        return self._session.get_credentials()


def find_local_target(environ: Mapping[str, str]) -> LocalTarget:
    """The local stack --local works on, from the first of:

    1. a local stack that is up: the one `make local` keeps up until Ctrl-C (or a `make run`
       still running), described in .local/live/ (or .local/run/) stack.json;
    2. your own, when the function's variables are set (WISTIA_TOKEN_SECRET,
       IMPORTS_TABLE_NAME, DEAD_LETTER_QUEUE_URL, WISTIA_UPLOAD_URL, WISTIA_API_URL, and
       S3_TO_WISTIA_BUCKET, S3_TO_WISTIA_FUNCTION), with AWS_ENDPOINT_URL at its moto;
    3. the snapshot the latest stopped one left (.local/run/ or .local/live/ snapshot.json),
       for reading only: what the stack held when it stopped.
    """
    stack = running_stack(environ)
    if stack is not None:
        return LocalTarget(
            stack.resources,
            f"the local stack {stack.started_by} keeps up at {stack.endpoint_url} "
            f"(since {stack.started_at})",
            stack=stack,
        )
    values = environment_values(environ)
    if values:
        endpoint = environ.get("AWS_ENDPOINT_URL", "") or "AWS_ENDPOINT_URL (not set)"
        return LocalTarget(values, f"your local stack at {endpoint}")
    snapshot = newest_snapshot(environ)
    if snapshot is not None:
        return LocalTarget(
            snapshot.stack.resources,
            f"the snapshot {snapshot.stack.started_by} left when it stopped its stack at "
            f"{snapshot.taken_at}",
            snapshot=snapshot,
        )
    raise CliError(NO_LOCAL_STACK)


def environment_values(environ: Mapping[str, str]) -> dict[str, str]:
    """A local stack of your own, from the function's variables, by resource name."""
    return {
        resource.name: environ[resource.local_env].strip()
        for resource in RESOURCES
        if resource.local_env and environ.get(resource.local_env, "").strip()
    }


def default_stack_name(
    directories: Sequence[Path] | None = None, config_env: str = "default"
) -> str:
    """samconfig.toml's stack_name for `config_env` (here, else in the repository), else
    "s3-to-wistia"."""
    for directory in directories or (Path.cwd(), REPOSITORY):
        try:
            config = tomllib.loads((directory / "samconfig.toml").read_text(encoding="utf-8"))
            return str(config[config_env]["global"]["parameters"]["stack_name"])
        except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
            continue
    return DEFAULT_STACK


def _checked(resource: Resource, value: str, source: str, error: type[CliError]) -> str:
    value = value.strip()
    if not resource.url:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise error(f"{source} must be an https URL ({resource.help}), not {value!r}")
    # The token travels in a header: plain http only to an emulator on this machine.
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise error(
            f"{source} must use https (plain http only to this machine, for an emulator), "
            f"not {value!r}"
        )
    return value


def _secret_error(error: Any, secret_id: str, region: str | None) -> CliError:
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code == "ResourceNotFoundException":
        return CliError(
            f"no Wistia token secret {secret_id!r} in {region or 'this region'} (or it has no "
            "value yet): check --token-secret / --stack / --region"
        )
    if code == "AccessDeniedException":
        return CliError(
            f"not allowed to read the Wistia token secret {secret_id!r}: your AWS identity "
            "needs secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)"
        )
    if code == "DecryptionFailure":
        return CliError(
            f"cannot decrypt the Wistia token secret {secret_id!r}: your AWS identity needs "
            "kms:Decrypt on the secret's KMS key"
        )
    if code == "InvalidRequestException":
        return CliError(
            f"the Wistia token secret {secret_id!r} cannot be read now (deleted or being "
            "deleted?): restore it or point --token-secret elsewhere"
        )
    return explain(error) or CliError(f"cannot read the Wistia token secret {secret_id!r}")
