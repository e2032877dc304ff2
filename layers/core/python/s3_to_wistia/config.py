"""Configuration, read once at cold start into a frozen object.

Every problem names the variable, so a bad deployment fails at init with a message an
operator can act on instead of failing object by object.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

# Wistia transcodes these; anything else in the bucket is recorded SKIPPED.
DEFAULT_EXTENSIONS = frozenset(
    [
        "3g2",
        "3gp",
        "aac",
        "aif",
        "aiff",
        "asf",
        "avi",
        "f4v",
        "flac",
        "flv",
        "m2ts",
        "m4a",
        "m4v",
        "mkv",
        "mov",
        "mp3",
        "mp4",
        "mpeg",
        "mpg",
        "mts",
        "mxf",
        "oga",
        "ogg",
        "ogv",
        "opus",
        "qt",
        "ts",
        "vob",
        "wav",
        "webm",
        "wma",
        "wmv",
    ]
)
LOOPBACK_HOSTS = frozenset({"localhost"})
MEDIA_NAME_RULES = ("file-name", "key")
TRACING_MODES = ("active", "passthrough")


ON_DELETE_CHOICES = ("keep", "archive", "delete")
ON_OVERWRITE_CHOICES = ("replace", "new")


class ConfigError(ValueError):
    """The function's configuration is unusable; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    token_secret_id: str
    imports_table_name: str
    dead_letter_queue_url: str
    upload_url: str = "https://upload.wistia.com/"
    api_url: str = "https://api.wistia.com/"
    project_id: str | None = None
    # (key prefix, project hashed id), longest prefix first: the first match wins.
    project_map: tuple[tuple[str, str], ...] = ()
    contact_id: int | None = None
    presigned_url_expires: int = 21600
    # None imports every key; otherwise lowercase extensions without the dot.
    extensions: frozenset[str] | None = DEFAULT_EXTENSIONS
    connect_timeout: float = 3.05
    read_timeout: float = 30.0
    max_attempts: int = 5
    token_cache_seconds: int = 300
    # After an answer was lost, look for the media Wistia may have created before sending
    # the import again: Wistia has no idempotency key, so a blind retry can duplicate it.
    lookup_before_resubmit: bool = True
    # An IAM user's keys (JSON secret) that sign presigned URLs valid for up to 7 days,
    # instead of the role's temporary credentials, which die within hours.
    signing_credentials_secret: str | None = None
    # A ranged GET of one byte through the presigned URL before submitting it: S3 answers it
    # as it will answer Wistia's fetch (archived, KMS key not allowed, a bucket policy...).
    probe_import_url: bool = True
    # The media's name: the key's last segment ("file-name") or the whole key ("key"),
    # less this prefix; x-amz-meta-wistia-name overrides both.
    media_name_from: str = "file-name"
    media_name_strip_prefix: str = ""
    # What a deleted object's media becomes at Wistia: kept (the default), archived, deleted.
    on_delete: str = "keep"
    # A new version of a key whose media is ready: swapped into that media (its hashed id,
    # URLs and embeds stay) with "replace", or a media of its own with "new".
    on_overwrite: str = "replace"
    # Lambda sets AWS_REGION; boto3 reads only AWS_DEFAULT_REGION, so honour both (None
    # leaves it to boto3's own configuration).
    aws_region: str | None = None
    # The account's request budget, shared by every caller of Wistia in the deployment
    # through its DynamoDB table (None: this process alone, in memory).
    requests_per_minute: int = 600
    rate_budget_table: str | None = None
    # The window Wistia counts the requests in; tests that compress time shorten it.
    rate_window_seconds: float = 60.0
    # X-Ray through Powertools Tracer, only when the function's tracing is Active: off, the
    # X-Ray SDK is not even imported.
    tracing: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            token_secret_id=_required(env, "WISTIA_TOKEN_SECRET"),
            imports_table_name=_required(env, "IMPORTS_TABLE_NAME"),
            dead_letter_queue_url=_required(env, "DEAD_LETTER_QUEUE_URL"),
            upload_url=_https_url(env, "WISTIA_UPLOAD_URL", cls.upload_url),
            api_url=_https_url(env, "WISTIA_API_URL", cls.api_url),
            project_id=_optional(env, "WISTIA_PROJECT_ID"),
            project_map=_project_map(env, "WISTIA_PROJECT_MAP"),
            contact_id=_optional_integer(env, "WISTIA_CONTACT_ID", minimum=1),
            presigned_url_expires=_integer(
                env, "PRESIGNED_URL_EXPIRES", cls.presigned_url_expires, minimum=1, maximum=604800
            ),
            extensions=_extensions(env, "IMPORT_EXTENSIONS"),
            connect_timeout=_number(env, "WISTIA_CONNECT_TIMEOUT", cls.connect_timeout),
            read_timeout=_number(env, "WISTIA_READ_TIMEOUT", cls.read_timeout),
            max_attempts=_integer(
                env, "WISTIA_MAX_ATTEMPTS", cls.max_attempts, minimum=1, maximum=20
            ),
            token_cache_seconds=_integer(
                env, "WISTIA_TOKEN_CACHE_SECONDS", cls.token_cache_seconds, minimum=0
            ),
            lookup_before_resubmit=_boolean(
                env, "WISTIA_LOOKUP_BEFORE_RESUBMIT", cls.lookup_before_resubmit
            ),
            signing_credentials_secret=_optional(env, "SIGNING_CREDENTIALS_SECRET"),
            probe_import_url=_boolean(env, "PROBE_IMPORT_URL", cls.probe_import_url),
            media_name_from=_choice(env, "MEDIA_NAME_FROM", MEDIA_NAME_RULES, cls.media_name_from),
            media_name_strip_prefix=env.get("MEDIA_NAME_STRIP_PREFIX", ""),
            on_delete=_choice(env, "ON_DELETE", ON_DELETE_CHOICES, cls.on_delete),
            on_overwrite=_choice(env, "ON_OVERWRITE", ON_OVERWRITE_CHOICES, cls.on_overwrite),
            aws_region=_optional(env, "AWS_REGION") or _optional(env, "AWS_DEFAULT_REGION"),
            requests_per_minute=_integer(
                env,
                "WISTIA_REQUESTS_PER_MINUTE",
                cls.requests_per_minute,
                minimum=1,
                maximum=1_000_000,
            ),
            rate_budget_table=_optional(env, "RATE_BUDGET_TABLE_NAME"),
            rate_window_seconds=_number(env, "WISTIA_RATE_WINDOW_SECONDS", cls.rate_window_seconds),
            tracing=_choice(env, "TRACING_MODE", TRACING_MODES, "passthrough") == "active",
        )


# Wistia's webhook bodies are a few KiB (at most a few dozen events); a Function URL takes
# up to 6 MB. Anything over the limit is refused before it is read.
DEFAULT_WEBHOOK_MAX_BODY_BYTES = 256 * 1024
FUNCTION_URL_MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_REQUESTS_PER_MINUTE = 600
# The poller's share of the account's request budget, at most: the rest is the importer's.
POLLER_SHARE_OF_BUDGET = 0.1


@dataclass(frozen=True)
class WebhookSettings:
    """The webhook receiver's configuration (../shared/CONTRACT.md, "Processing status")."""

    webhook_secret_id: str
    imports_table_name: str
    dead_letter_queue_url: str
    # Powertools caches the secret this long: a rotated key works within it, without a
    # redeploy (sooner: a signature that does not match reads the secret again).
    secret_cache_seconds: int = 300
    max_body_bytes: int = DEFAULT_WEBHOOK_MAX_BODY_BYTES
    aws_region: str | None = None
    tracing: bool = False  # as Settings.tracing

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookSettings:
        env = os.environ if env is None else env
        return cls(
            webhook_secret_id=_required(env, "WISTIA_WEBHOOK_SECRET"),
            imports_table_name=_required(env, "IMPORTS_TABLE_NAME"),
            dead_letter_queue_url=_required(env, "DEAD_LETTER_QUEUE_URL"),
            secret_cache_seconds=_integer(
                env, "WISTIA_WEBHOOK_SECRET_CACHE_SECONDS", cls.secret_cache_seconds, minimum=0
            ),
            max_body_bytes=_integer(
                env,
                "WEBHOOK_MAX_BODY_BYTES",
                cls.max_body_bytes,
                minimum=1024,
                maximum=FUNCTION_URL_MAX_BODY_BYTES,
            ),
            aws_region=_optional(env, "AWS_REGION") or _optional(env, "AWS_DEFAULT_REGION"),
            tracing=_choice(env, "TRACING_MODE", TRACING_MODES, "passthrough") == "active",
        )


@dataclass(frozen=True)
class PollerSettings:
    """The status poller's configuration."""

    token_secret_id: str
    imports_table_name: str
    dead_letter_queue_url: str
    api_url: str = "https://api.wistia.com/"
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    # A record is polled once nothing was learned about its media for this long.
    poll_after_seconds: int = 900
    # Requests to the Data API in one run (100 medias each).
    max_requests: int = 10
    token_cache_seconds: int = 300
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    aws_region: str | None = None
    # The account's shared request budget (Settings' fields of the same names): with a
    # table, each of the run's requests is booked on it too.
    rate_budget_table: str | None = None
    rate_window_seconds: float = 60.0
    tracing: bool = False  # as Settings.tracing

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PollerSettings:
        env = os.environ if env is None else env
        per_minute = _integer(env, "WISTIA_REQUESTS_PER_MINUTE", cls.requests_per_minute, minimum=1)
        # Whole runs of requests: a schedule of a minute or more never takes more than this
        # share of the account's minute.
        share = max(1, int(per_minute * POLLER_SHARE_OF_BUDGET))
        max_requests = _integer(env, "STATUS_POLL_MAX_REQUESTS", cls.max_requests, minimum=1)
        if max_requests > share:
            raise ConfigError(
                f"STATUS_POLL_MAX_REQUESTS must be at most {share} (a tenth of "
                f"WISTIA_REQUESTS_PER_MINUTE={per_minute}: the rest is the importer's), "
                f"got {max_requests}"
            )
        return cls(
            token_secret_id=_required(env, "WISTIA_TOKEN_SECRET"),
            imports_table_name=_required(env, "IMPORTS_TABLE_NAME"),
            dead_letter_queue_url=_required(env, "DEAD_LETTER_QUEUE_URL"),
            api_url=_https_url(env, "WISTIA_API_URL", cls.api_url),
            requests_per_minute=per_minute,
            poll_after_seconds=_integer(
                env, "STATUS_POLL_AFTER_SECONDS", cls.poll_after_seconds, minimum=0
            ),
            max_requests=max_requests,
            token_cache_seconds=_integer(
                env, "WISTIA_TOKEN_CACHE_SECONDS", cls.token_cache_seconds, minimum=0
            ),
            connect_timeout=_number(env, "WISTIA_CONNECT_TIMEOUT", cls.connect_timeout),
            read_timeout=_number(env, "WISTIA_READ_TIMEOUT", cls.read_timeout),
            aws_region=_optional(env, "AWS_REGION") or _optional(env, "AWS_DEFAULT_REGION"),
            rate_budget_table=_optional(env, "RATE_BUDGET_TABLE_NAME"),
            rate_window_seconds=_number(env, "WISTIA_RATE_WINDOW_SECONDS", cls.rate_window_seconds),
            tracing=_choice(env, "TRACING_MODE", TRACING_MODES, "passthrough") == "active",
        )


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _required(env: Mapping[str, str], name: str) -> str:
    value = _optional(env, name)
    if value is None:
        raise ConfigError(f"{name} is required but not set")
    return value


def _integer(
    env: Mapping[str, str],
    name: str,
    default: int,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = _optional_integer(env, name, minimum, maximum)
    return default if value is None else value


def _optional_integer(
    env: Mapping[str, str], name: str, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    raw = _optional(env, name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else " up")
        raise ConfigError(f"{name} must be {bounds}, got {value}")
    return value


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _optional(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 900:
        raise ConfigError(f"{name} must be more than 0 and at most 900 seconds, got {raw}")
    return value


def _extensions(env: Mapping[str, str], name: str) -> frozenset[str] | None:
    raw = _optional(env, name)
    if raw is None:
        return DEFAULT_EXTENSIONS
    if raw == "*":
        return None
    extensions = frozenset(part.strip().lstrip(".").lower() for part in raw.split(","))
    if "" in extensions or any(not ext.isalnum() for ext in extensions):
        raise ConfigError(
            f"{name} must be comma-separated extensions such as mp4,mov or *, got {raw!r}"
        )
    return extensions


def _project_map(env: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    raw = _optional(env, name)
    if raw is None:
        return ()
    try:
        document = json.loads(raw)
    except ValueError:
        raise ConfigError(f'{name} must be a JSON object like {{"prefix/": "projectid"}}') from None
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in document.items()
    ):
        raise ConfigError(f"{name} must map key prefixes to project hashed ids (strings)")
    return tuple(sorted(((k, v.strip()) for k, v in document.items()), key=lambda p: -len(p[0])))


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = _optional(env, name)
    if raw is None:
        return default
    if raw.lower() not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw.lower()


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _optional(env, name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _https_url(env: Mapping[str, str], name: str, default: str) -> str:
    url = _optional(env, name) or default
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{name} must be an https URL, got {url!r}")
    # The token travels in a header: plain http is only for an emulator on this machine.
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{name} must use https (http is allowed only for loopback hosts), got {url!r}"
        )
    return url


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
