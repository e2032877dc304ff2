"""Configuration, read once at cold start into a frozen object: the import function's
Settings here (the Batch Operations function and the CLI run the same code path), and the
readers every function's settings are made with (the webhook receiver's are in webhooks,
the poller's in polling: the import function's cold start does not define them).

Every problem names the variable, so a bad deployment fails at init with a message an
operator can act on instead of failing object by object.
"""

from __future__ import annotations

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
# The contract's loopback hosts, the only ones plain http may reach (local runs, tests).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
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
            token_secret_id=required(env, "WISTIA_TOKEN_SECRET"),
            imports_table_name=required(env, "IMPORTS_TABLE_NAME"),
            dead_letter_queue_url=required(env, "DEAD_LETTER_QUEUE_URL"),
            upload_url=https_url(env, "WISTIA_UPLOAD_URL", cls.upload_url),
            api_url=https_url(env, "WISTIA_API_URL", cls.api_url),
            project_id=optional(env, "WISTIA_PROJECT_ID"),
            project_map=project_map(env, "WISTIA_PROJECT_MAP"),
            contact_id=optional_integer(env, "WISTIA_CONTACT_ID", minimum=1),
            presigned_url_expires=integer(
                env, "PRESIGNED_URL_EXPIRES", cls.presigned_url_expires, minimum=1, maximum=604800
            ),
            extensions=extensions(env, "IMPORT_EXTENSIONS"),
            connect_timeout=seconds(env, "WISTIA_CONNECT_TIMEOUT", cls.connect_timeout),
            read_timeout=seconds(env, "WISTIA_READ_TIMEOUT", cls.read_timeout),
            max_attempts=integer(
                env, "WISTIA_MAX_ATTEMPTS", cls.max_attempts, minimum=1, maximum=20
            ),
            token_cache_seconds=integer(
                env, "WISTIA_TOKEN_CACHE_SECONDS", cls.token_cache_seconds, minimum=0
            ),
            lookup_before_resubmit=boolean(
                env, "WISTIA_LOOKUP_BEFORE_RESUBMIT", cls.lookup_before_resubmit
            ),
            signing_credentials_secret=optional(env, "SIGNING_CREDENTIALS_SECRET"),
            probe_import_url=boolean(env, "PROBE_IMPORT_URL", cls.probe_import_url),
            media_name_from=choice(env, "MEDIA_NAME_FROM", MEDIA_NAME_RULES, cls.media_name_from),
            media_name_strip_prefix=env.get("MEDIA_NAME_STRIP_PREFIX", ""),
            on_delete=choice(env, "ON_DELETE", ON_DELETE_CHOICES, cls.on_delete),
            on_overwrite=choice(env, "ON_OVERWRITE", ON_OVERWRITE_CHOICES, cls.on_overwrite),
            aws_region=region(env),
            requests_per_minute=integer(
                env,
                "WISTIA_REQUESTS_PER_MINUTE",
                cls.requests_per_minute,
                minimum=1,
                maximum=1_000_000,
            ),
            rate_budget_table=optional(env, "RATE_BUDGET_TABLE_NAME"),
            rate_window_seconds=seconds(env, "WISTIA_RATE_WINDOW_SECONDS", cls.rate_window_seconds),
            tracing=tracing(env),
        )


def optional(env: Mapping[str, str], name: str) -> str | None:
    """The variable, stripped; None when unset or blank."""
    value = env.get(name, "").strip()
    return value or None


def required(env: Mapping[str, str], name: str) -> str:
    """The variable; ConfigError naming it when unset or blank."""
    value = optional(env, name)
    if value is None:
        raise ConfigError(f"{name} is required but not set")
    return value


def integer(
    env: Mapping[str, str],
    name: str,
    default: int,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = optional_integer(env, name, minimum, maximum)
    return default if value is None else value


def optional_integer(
    env: Mapping[str, str], name: str, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    raw = optional(env, name)
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


def seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A number of seconds, more than 0 and at most 900."""
    raw = optional(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 900:
        raise ConfigError(f"{name} must be more than 0 and at most 900 seconds, got {raw}")
    return value


def extensions(env: Mapping[str, str], name: str) -> frozenset[str] | None:
    raw = optional(env, name)
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


def project_map(env: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    raw = optional(env, name)
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


def choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = optional(env, name)
    if raw is None:
        return default
    if raw.lower() not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw.lower()


def boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = optional(env, name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def https_url(env: Mapping[str, str], name: str, default: str) -> str:
    url = optional(env, name) or default
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{name} must be an https URL, got {url!r}")
    # The token travels in a header: plain http is only for an emulator on this machine.
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{name} must use https (http is allowed only for loopback hosts), got {url!r}"
        )
    return url


def region(env: Mapping[str, str]) -> str | None:
    """Lambda sets AWS_REGION; boto3 reads only AWS_DEFAULT_REGION, so honour both (None
    leaves it to boto3's own configuration)."""
    return optional(env, "AWS_REGION") or optional(env, "AWS_DEFAULT_REGION")


def tracing(env: Mapping[str, str]) -> bool:
    """TRACING_MODE (the template's Tracing): True when Active."""
    return choice(env, "TRACING_MODE", TRACING_MODES, "passthrough") == "active"


def is_loopback(host: str) -> bool:
    return host.lower() in LOOPBACK_HOSTS
