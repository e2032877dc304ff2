"""The states of an S3 object that decide whether S3 serves it, where moto's server does not.

moto 5.2.5 emulates the GLACIER and DEEP_ARCHIVE storage classes, but not these three:

- SSE-C. moto ignores the customer-key headers: it stores the object in the clear and serves
  it to anyone. S3 keeps a hash of the key and refuses every read that does not present the
  same key in headers, so a plain presigned URL never fetches an SSE-C object.
- kms:Decrypt. moto serves an SSE-KMS object whatever the reader may do with its KMS key. S3
  decrypts on the reader's behalf and refuses the GET when the reader may not use the key.
- S3 Intelligent-Tiering's archive tiers. moto never moves an object to them. S3 reports the
  tier on HEAD, refuses the GET until a RestoreObject has brought the object back, and
  reports the restore's progress on HEAD.

ObjectState is a WSGI middleware in front of moto that keeps, per object version, the SSE-C
key's MD5 (never the key) and the archive state, and answers as S3 does. What it knows of a
version goes with the version: an overwrite in an unversioned bucket or a delete forgets it.
The AWS-managed key aws/s3 may always be used; customer-managed keys only by the access keys
granted them:

    aws.allow_kms_decrypt(access_key_id, key_arn)
    aws.archive(bucket, key, tier="DEEP_ARCHIVE_ACCESS", restore_delay=3600)

Requests are path-style (`/bucket/key`), as every client of the local stack sends them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import itertools
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from local_stack.presign_check import SigningKey

WsgiApp = Callable[..., Iterable[bytes]]
Headers = list[tuple[str, str]]

ARCHIVE_TIERS = ("ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS")
AWS_MANAGED_KEY = "alias/aws/s3"
NULL_VERSION = "null"
MAX_BODY = 2 * 1024 * 1024

_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 409: "Conflict"}
# Query parameters that say how a request is signed, not what it does.
_SIGNING_PARAMS = {
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
    "x-id",
}
# The object operations ObjectState looks at, by method and query parameters (HEAD as GET).
_OBJECT_OPERATIONS = {
    ("GET", frozenset()): "GetObject",
    ("GET", frozenset({"versionId"})): "GetObject",
    ("GET", frozenset({"partNumber"})): "GetObject",
    ("GET", frozenset({"versionId", "partNumber"})): "GetObject",
    ("PUT", frozenset()): "PutObject",
    ("PUT", frozenset({"partNumber", "uploadId"})): "UploadPart",
    ("POST", frozenset({"uploads"})): "CreateMultipartUpload",
    ("POST", frozenset({"uploadId"})): "CompleteMultipartUpload",
    ("POST", frozenset({"restore"})): "RestoreObject",
    ("POST", frozenset({"restore", "versionId"})): "RestoreObject",
    ("DELETE", frozenset()): "DeleteObject",
    ("DELETE", frozenset({"versionId"})): "DeleteObject",
    ("DELETE", frozenset({"uploadId"})): "AbortMultipartUpload",
}
_SIGV4_HEADER = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")
_SSE_HEADERS = (
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-server-side-encryption-context",
)

# S3's wording. Sources: botocore's S3 model (RestoreObject's errors, the InvalidObjectState
# shape with StorageClass and AccessTier), the S3 User Guide (intelligent-tiering-managing:
# restores take no Days), and answers S3 gave its users, quoted in public bug reports:
# boto3#1482 and aws-sdk-go#2724 (SSE-C reads), aws-sdk-ruby#1084 (SSE-C parts),
# aws-cli#6906 (key MD5), s3cmd#1377 (Days), modernisation-platform#11726 (kms:Decrypt),
# boto3#2952 and aws-sdk-net#2543 (SigV2 and KMS); LocalStack's snapshots recorded against
# S3 (a wrong SSE-C key); moto's own text for GLACIER objects.
SSE_C_REQUIRED = (
    "The object was stored using a form of Server Side Encryption. "
    "The correct parameters must be provided to retrieve the object."
)
SSE_C_WRONG_KEY = (
    "Requests specifying Server Side Encryption with Customer provided keys "
    "must provide the correct secret key."
)
SSE_C_NOT_APPLICABLE = "The encryption parameters are not applicable to this object."
SSE_C_PART_MISSING = (
    "The multipart upload initiate requested encryption. "
    "Subsequent part requests must include the appropriate encryption parameters."
)
SSE_C_PART_MISMATCH = "The provided encryption parameters did not match the ones used originally."
ARCHIVED = "The operation is not valid for the object's storage class"
RESTORE_IN_PROGRESS = "Object restore is already in progress"
RESTORE_DAYS = (
    "INTELLIGENT_TIERING objects are not subject to restore expiry. "
    "Do not specify Days when restoring this object"
)
KMS_NEEDS_SIGV4 = (
    "Requests specifying Server Side Encryption with AWS KMS managed keys "
    "require AWS Signature Version 4."
)


@dataclass(frozen=True)
class Refusal:
    """An S3 error answer: status, code, message and any extra elements of its body."""

    status: int
    code: str
    message: str
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VersionState:
    """What S3 knows about one object version that moto does not."""

    sse_c_key_md5: str | None = None
    archive_tier: str | None = None
    restore_delay: float = 0.0
    restore_requested_at: float | None = None

    def restored(self, now: float) -> bool:
        requested = self.restore_requested_at
        return requested is not None and now >= requested + self.restore_delay

    def archived(self, now: float) -> bool:
        return self.archive_tier is not None and not self.restored(now)

    def restoring(self, now: float) -> bool:
        return self.restore_requested_at is not None and not self.restored(now)

    def head_headers(self, now: float) -> Headers:
        headers: Headers = []
        if self.archived(now):
            headers.append(("x-amz-archive-status", str(self.archive_tier)))
        if self.restoring(now):
            headers.append(("x-amz-restore", 'ongoing-request="true"'))
            requested = formatdate(self.restore_requested_at, usegmt=True)
            headers.append(("x-amz-restore-request-date", requested))
        elif self.restore_requested_at is not None:
            # Back in the Frequent Access tier, an Intelligent-Tiering object has no expiry.
            headers.append(("x-amz-restore", 'ongoing-request="false"'))
        return headers


@dataclass(frozen=True)
class S3Request:
    """The parts of an S3 request that decide what ObjectState does with it."""

    method: str
    bucket: str
    key: str
    params: Mapping[str, str]
    access_key: str | None
    signature_version: str  # "v4", "v2" or "" for an unsigned request

    @property
    def operation(self) -> str | None:
        names = {name for name in self.params if name not in _SIGNING_PARAMS}
        names = {name for name in names if not name.startswith("response-")}
        if not self.key:
            if self.method == "POST" and names == {"delete"}:
                return "DeleteObjects"
            return None
        method = "GET" if self.method == "HEAD" else self.method
        operation = _OBJECT_OPERATIONS.get((method, frozenset(names)))
        if operation == "GetObject" and self.method == "HEAD":
            return "HeadObject"
        return operation


class ObjectState:
    """WSGI middleware: serves S3 objects as S3 does for SSE-C, kms:Decrypt and the
    Intelligent-Tiering archive tiers. Safe to use from the server's request threads."""

    def __init__(
        self,
        app: WsgiApp,
        keys: Mapping[str, SigningKey],
        *,
        account_id: str,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._keys = keys
        self._account_id = account_id
        self._region = region
        self._clock = clock
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str, str], VersionState] = {}
        self._uploads: dict[str, str | None] = {}  # multipart upload id -> SSE-C key MD5
        self._decrypt: dict[str, set[str]] = {}  # access key id -> KMS keys it may use

    # -- what tests arrange -------------------------------------------------------------

    def allow_kms_decrypt(self, access_key_id: str, key_id: str) -> None:
        """Let `access_key_id` use a customer-managed KMS key (ID, ARN, alias or alias ARN)."""
        with self._lock:
            self._decrypt.setdefault(access_key_id, set()).add(key_id)

    def archive(
        self,
        bucket: str,
        key: str,
        tier: str = "ARCHIVE_ACCESS",
        version_id: str | None = None,
        restore_delay: float = 0.0,
    ) -> None:
        """Move an INTELLIGENT_TIERING object version (the current one by default) to an
        archive tier. A RestoreObject for it completes `restore_delay` seconds later."""
        if tier not in ARCHIVE_TIERS:
            raise ValueError(f"tier must be one of {', '.join(ARCHIVE_TIERS)}, not {tier!r}")
        obj = _moto_object(self._account_id, bucket, key, version_id)
        if obj is None:
            raise LookupError(f"no such object version: s3://{bucket}/{key} ({version_id})")
        if obj.storage_class != "INTELLIGENT_TIERING":
            raise ValueError(
                f"s3://{bucket}/{key} is {obj.storage_class}; only INTELLIGENT_TIERING objects "
                "move to the archive tiers"
            )
        version = str(obj.version_id or NULL_VERSION)
        with self._lock:
            current = self._versions.get((bucket, key, version), VersionState())
            self._versions[(bucket, key, version)] = replace(
                current, archive_tier=tier, restore_delay=restore_delay, restore_requested_at=None
            )

    def state(self, bucket: str, key: str, version_id: str = NULL_VERSION) -> VersionState:
        """What is known of an object version ("null" in an unversioned bucket)."""
        with self._lock:
            return self._versions.get((bucket, key, version_id), VersionState())

    # -- the middleware -----------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = _s3_request(environ)
        operation = request.operation if request is not None else None
        if request is None or operation is None:
            return self._app(environ, start_response)
        handler = getattr(self, f"_{_snake(operation)}")
        return handler(request, environ, start_response)

    def _get_object(self, request: S3Request, environ: dict[str, Any], start: Any) -> Any:
        return self._read(request, environ, start)

    def _head_object(self, request: S3Request, environ: dict[str, Any], start: Any) -> Any:
        return self._read(request, environ, start)

    def _read(self, request: S3Request, environ: dict[str, Any], start: Any) -> Any:
        md5, refusal = _sse_c_key(environ)
        if refusal is not None:
            return _refuse(request, refusal, start)
        status, headers, body = _call(self._app, environ)
        if not status.startswith("20"):
            return _answer(start, status, headers, body)
        version = _header(headers, "x-amz-version-id") or NULL_VERSION
        state = self.state(request.bucket, request.key, version)
        now = self._clock()
        refusal = self._read_refusal(request, environ, state, md5, headers, now)
        if refusal is not None:
            _close(body)
            return _refuse(request, refusal, start)
        if state.sse_c_key_md5 is not None:
            headers = _customer_key_headers(_without(headers, _SSE_HEADERS), state.sse_c_key_md5)
        headers = headers + state.head_headers(now)
        return _answer(start, status, headers, body)

    def _read_refusal(
        self,
        request: S3Request,
        environ: Mapping[str, Any],
        state: VersionState,
        md5: str | None,
        headers: Headers,
        now: float,
    ) -> Refusal | None:
        if state.sse_c_key_md5 is not None:
            if md5 is None:
                return Refusal(400, "InvalidRequest", SSE_C_REQUIRED)
            if md5 != state.sse_c_key_md5:
                return Refusal(403, "AccessDenied", SSE_C_WRONG_KEY)
            return None
        if md5 is not None:
            return Refusal(400, "InvalidRequest", SSE_C_NOT_APPLICABLE)
        reading = request.method == "GET"
        if reading and state.archived(now):
            extra = (
                ("StorageClass", "INTELLIGENT_TIERING"),
                ("AccessTier", str(state.archive_tier)),
            )
            return Refusal(403, "InvalidObjectState", ARCHIVED, extra)
        if _header(headers, "x-amz-server-side-encryption") not in ("aws:kms", "aws:kms:dsse"):
            return None
        if reading and request.signature_version == "v2":
            extra = (("ArgumentName", "Authorization"), ("ArgumentValue", "null"))
            return Refusal(400, "InvalidArgument", KMS_NEEDS_SIGV4, extra)
        # HEAD decrypts nothing, unless it asks for the stored checksum.
        checksum_asked = environ.get("HTTP_X_AMZ_CHECKSUM_MODE", "").upper() == "ENABLED"
        has_checksum = any(name.lower().startswith("x-amz-checksum-") for name, _ in headers)
        if not reading and not (checksum_asked and has_checksum):
            return None
        key_arn = self._customer_key_arn(
            _header(headers, "x-amz-server-side-encryption-aws-kms-key-id")
        )
        if key_arn is None or self._may_decrypt(request.access_key, key_arn):
            return None
        message = (
            f"User: {self._principal(request.access_key)} is not authorized to perform: "
            f"kms:Decrypt on resource: {key_arn} "
            "because no identity-based policy allows the kms:Decrypt action"
        )
        return Refusal(403, "AccessDenied", message)

    def _put_object(self, request: S3Request, environ: dict[str, Any], start: Any) -> Any:
        md5, refusal = _sse_c_key(environ, writing=True)
        if refusal is not None:
            return _refuse(request, refusal, start)
        status, headers, body = _call(self._app, environ)
        if status.startswith("200"):
            version = _header(headers, "x-amz-version-id") or NULL_VERSION
            self._written(request.bucket, request.key, version, md5)
            if md5 is not None:
                headers = _customer_key_headers(_without(headers, _SSE_HEADERS), md5)
        return _answer(start, status, headers, body)

    def _create_multipart_upload(
        self, request: S3Request, environ: dict[str, Any], start: Any
    ) -> Any:
        md5, refusal = _sse_c_key(environ, writing=True)
        if refusal is not None:
            return _refuse(request, refusal, start)
        status, headers, body = _call(self._app, environ)
        if not status.startswith("200"):
            return _answer(start, status, headers, body)
        content = _drain(body)
        upload_id = _first_text(content, "UploadId")
        if upload_id is not None:
            with self._lock:
                self._uploads[upload_id] = md5
        if md5 is not None:
            headers = _customer_key_headers(_without(headers, _SSE_HEADERS), md5)
        return _answer(start, status, headers, [content])

    def _upload_part(self, request: S3Request, environ: dict[str, Any], start: Any) -> Any:
        md5, refusal = _sse_c_key(environ)
        if refusal is not None:
            return _refuse(request, refusal, start)
        with self._lock:
            known = request.params["uploadId"] in self._uploads
            upload_md5 = self._uploads.get(request.params["uploadId"])
        if known and (upload_md5 is None) != (md5 is None):
            return _refuse(request, Refusal(400, "InvalidRequest", SSE_C_PART_MISSING), start)
        if known and md5 != upload_md5:
            return _refuse(request, Refusal(400, "InvalidRequest", SSE_C_PART_MISMATCH), start)
        status, headers, body = _call(self._app, environ)
        if status.startswith("200") and md5 is not None:
            headers = _customer_key_headers(_without(headers, _SSE_HEADERS), md5)
        return _answer(start, status, headers, body)

    def _complete_multipart_upload(
        self, request: S3Request, environ: dict[str, Any], start: Any
    ) -> Any:
        status, headers, body = _call(self._app, environ)
        if status.startswith("200"):
            with self._lock:
                md5 = self._uploads.pop(request.params["uploadId"], None)
            version = _header(headers, "x-amz-version-id") or NULL_VERSION
            self._written(request.bucket, request.key, version, md5)
        return _answer(start, status, headers, body)

    def _abort_multipart_upload(
        self, request: S3Request, environ: dict[str, Any], start: Any
    ) -> Any:
        status, headers, body = _call(self._app, environ)
        if status.startswith("20"):
            with self._lock:
                self._uploads.pop(request.params["uploadId"], None)
        return _answer(start, status, headers, body)

    def _restore_object(self, request: S3Request, environ: dict[str, Any], start: Any) -> Any:
        version = request.params.get("versionId") or _current_version(
            self._account_id, request.bucket, request.key
        )
        gives_days = re.search(rb"<(?:\w+:)?Days>", _request_body(environ)) is not None
        place = (request.bucket, request.key, version or NULL_VERSION)
        now = self._clock()
        refusal = None
        with self._lock:
            state = self._versions.get(place)
            if state is None or not state.archived(now):
                state = None  # moto answers for every other object
            elif state.restoring(now):
                refusal = Refusal(409, "RestoreAlreadyInProgress", RESTORE_IN_PROGRESS)
            elif gives_days:
                refusal = Refusal(400, "InvalidArgument", RESTORE_DAYS)
            else:
                self._versions[place] = replace(state, restore_requested_at=now)
        if refusal is not None:
            return _refuse(request, refusal, start)
        if state is None:
            return self._app(environ, start)
        return _answer(start, "202 Accepted", [("Content-Length", "0")], [b""])

    def _delete_object(self, request: S3Request, environ: dict[str, Any], start: Any) -> Any:
        status, headers, body = _call(self._app, environ)
        if status.startswith("20"):
            self._prune(request.bucket, {request.key})
        return _answer(start, status, headers, body)

    def _delete_objects(self, request: S3Request, environ: dict[str, Any], start: Any) -> Any:
        keys = {obj["Key"] for obj in _elements(_request_body(environ), "Object") if "Key" in obj}
        status, headers, body = _call(self._app, environ)
        if status.startswith("200"):
            self._prune(request.bucket, keys)
        return _answer(start, status, headers, body)

    # -- state ----------------------------------------------------------------------------

    def _written(self, bucket: str, key: str, version: str, md5: str | None) -> None:
        """A new object (version) replaces whatever was known of the one it overwrote."""
        with self._lock:
            self._versions.pop((bucket, key, version), None)
            if md5 is not None:
                self._versions[(bucket, key, version)] = VersionState(sse_c_key_md5=md5)

    def _prune(self, bucket: str, keys: set[str]) -> None:
        """Forget the versions of these keys that moto no longer has: a delete removed them,
        where a new delete marker only hides them."""
        wanted = {(bucket, key) for key in keys}
        with self._lock:  # held while asking moto, so no write in between is forgotten
            for place in [place for place in self._versions if place[:2] in wanted]:
                if _moto_object(self._account_id, *place) is None:
                    del self._versions[place]

    def _may_decrypt(self, access_key: str | None, key_arn: str) -> bool:
        with self._lock:
            granted = set(self._decrypt.get(access_key or "", ()))
        return any(self._customer_key_arn(key_id) == key_arn for key_id in granted)

    def _customer_key_arn(self, key_id: str | None) -> str | None:
        """The ARN of a customer-managed KMS key, or None for the AWS-managed key aws/s3."""
        if not key_id:
            return None  # aws:kms with no key ID: S3 uses aws/s3
        name = key_id
        if name.startswith("arn:") and ":alias/" in name:
            name = "alias/" + name.split(":alias/", 1)[1]
        if name == AWS_MANAGED_KEY:
            return None
        prefix = f"arn:aws:kms:{self._region}:{self._account_id}:"
        if name.startswith("alias/"):
            arn = _moto_alias_target(self._account_id, self._region, name) or prefix + name
        elif name.startswith("arn:"):
            arn = name
        else:
            arn = f"{prefix}key/{name}"
        managed = _moto_alias_target(self._account_id, self._region, AWS_MANAGED_KEY)
        return None if arn == managed else arn

    def _principal(self, access_key: str | None) -> str:
        if access_key is None:
            return "anonymous"
        key = self._keys.get(access_key)
        if key is not None and key.session_token is not None:
            return f"arn:aws:sts::{self._account_id}:assumed-role/local-stack/{access_key}"
        return f"arn:aws:iam::{self._account_id}:user/{access_key}"


# -- reading requests ---------------------------------------------------------------------


def _s3_request(environ: Mapping[str, Any]) -> S3Request | None:
    """The S3 request in `environ`, or None when it is another service's or no object's."""
    if environ.get("HTTP_X_AMZ_TARGET"):
        return None  # a JSON-protocol service (DynamoDB, SQS, Secrets Manager, KMS...)
    query = environ.get("QUERY_STRING", "")
    params = {name: values[0] for name, values in parse_qs(query, keep_blank_values=True).items()}
    access_key, service, version = _signer(environ, params)
    if version == "v4" and service != "s3":
        return None
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    path = unquote(raw.split("?", 1)[0])
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return None
    method = str(environ.get("REQUEST_METHOD", "")).upper()
    return S3Request(method, bucket, key, params, access_key, version)


def _signer(environ: Mapping[str, Any], params: Mapping[str, str]) -> tuple[str | None, str, str]:
    """Who signed the request, for which service, and with which signature version."""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    match = _SIGV4_HEADER.search(authorization)
    if match:
        return match.group(1), match.group(2), "v4"
    credential = params.get("X-Amz-Credential", "")
    if credential:
        parts = credential.split("/")
        return parts[0], parts[3] if len(parts) > 3 else "", "v4"
    if authorization.startswith("AWS "):
        return authorization[4:].split(":", 1)[0], "s3", "v2"
    if "AWSAccessKeyId" in params:
        return params["AWSAccessKeyId"], "s3", "v2"
    return None, "s3", ""


def _sse_c_key(
    environ: Mapping[str, Any], writing: bool = False
) -> tuple[str | None, Refusal | None]:
    """The MD5 of the SSE-C key the request presents (never the key), or S3's refusal of
    its SSE-C headers. (None, None) when it presents none."""
    algorithm = environ.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER_ALGORITHM")
    key = environ.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER_KEY")
    given_md5 = environ.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER_KEY_MD5")
    if algorithm is None and key is None and given_md5 is None:
        return None, None
    argument = (("ArgumentName", "x-amz-server-side-encryption"), ("ArgumentValue", "null"))
    if writing and environ.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION"):
        message = (
            "Server Side Encryption with Customer provided key is incompatible "
            "with the encryption method specified"
        )
        return None, Refusal(400, "InvalidArgument", message, argument)
    prefix = "Requests specifying Server Side Encryption with Customer provided keys must provide"
    if algorithm is None:
        return None, Refusal(
            400, "InvalidArgument", f"{prefix} a valid encryption algorithm.", argument
        )
    if algorithm != "AES256":
        return None, Refusal(
            400,
            "InvalidEncryptionAlgorithmError",
            "The Encryption request you specified is not valid. Supported value: AES256.",
            (("ArgumentName", "x-amz-server-side-encryption"), ("ArgumentValue", algorithm)),
        )
    if not key:
        return None, Refusal(400, "InvalidArgument", f"{prefix} an appropriate secret key.")
    invalid_key = Refusal(
        400, "InvalidArgument", "The secret key was invalid for the specified algorithm."
    )
    try:
        secret = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return None, invalid_key
    md5 = base64.b64encode(hashlib.md5(secret, usedforsecurity=False).digest()).decode()
    # S3 compares the MD5s before it looks at the key's length.
    if given_md5 is not None and given_md5 != md5:
        message = "The calculated MD5 hash of the key did not match the hash that was provided."
        return None, Refusal(400, "InvalidArgument", message, argument)
    if len(secret) != 32:
        return None, invalid_key
    return md5, None


def _request_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back so the application can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    if length <= 0 or length > MAX_BODY:
        return b""
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


# -- answering ----------------------------------------------------------------------------


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, Headers, Iterable[bytes]]:
    """Run the application and hold its answer, to look at it before the client does."""
    answer: list[Any] = []

    def start(status: str, headers: Headers, exc_info: Any = None) -> Callable[[bytes], None]:
        answer[:] = [status, list(headers)]
        return lambda data: None

    body = app(environ, start)
    if not answer:  # an application may start its answer only once it is iterated
        chunks = iter(body)
        first = next(chunks, b"")
        body = _Chained(itertools.chain([first], chunks), body)
    return answer[0], answer[1], body


class _Chained:
    """An iterable over chunks that still closes the application's own iterable."""

    def __init__(self, chunks: Iterator[bytes], original: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._original = original

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        _close(self._original)


def _answer(start: Any, status: str, headers: Headers, body: Iterable[bytes]) -> Iterable[bytes]:
    start(status, headers)
    return body


def _refuse(request: S3Request, refusal: Refusal, start: Any) -> list[bytes]:
    request_id = uuid.uuid4().hex[:16].upper()
    body = b""
    if request.method != "HEAD":  # HEAD answers carry the status alone
        extra = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in refusal.extra)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{refusal.code}</Code><Message>{escape(refusal.message)}</Message>"
            f"{extra}<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()
    headers = [
        ("Content-Type", "application/xml"),
        ("Content-Length", str(len(body))),
        ("x-amz-request-id", request_id),
    ]
    start(f"{refusal.status} {_REASONS.get(refusal.status, 'Error')}", headers)
    return [body]


def _header(headers: Headers, name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def _without(headers: Headers, names: Iterable[str]) -> Headers:
    dropped = {name.lower() for name in names}
    return [(key, value) for key, value in headers if key.lower() not in dropped]


def _customer_key_headers(headers: Headers, md5: str) -> Headers:
    return [
        *headers,
        ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
        ("x-amz-server-side-encryption-customer-key-MD5", md5),
    ]


def _drain(body: Iterable[bytes]) -> bytes:
    try:
        return b"".join(body)
    finally:
        _close(body)


def _close(body: Iterable[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _elements(content: bytes, name: str) -> list[dict[str, str]]:
    """The children's texts of each `name` element of an XML document."""
    try:
        root = ET.fromstring(content)  # noqa: S314 - a local client's request, on loopback
    except ET.ParseError:
        return []
    return [
        {_local(child.tag): child.text or "" for child in element}
        for element in root.iter()
        if _local(element.tag) == name
    ]


def _first_text(content: bytes, name: str) -> str | None:
    try:
        root = ET.fromstring(content)  # noqa: S314 - moto's answer, not outside input
    except ET.ParseError:
        return None
    return next((el.text for el in root.iter() if _local(el.tag) == name and el.text), None)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# -- moto's own records -------------------------------------------------------------------


def _moto_object(account_id: str, bucket: str, key: str, version_id: str | None) -> Any:
    """moto's record of an object version (the current one by default), or None. Read
    without moto's get_object, which would tick the object's restore state machine."""
    from moto.s3.models import FakeKey, s3_backends

    try:
        keys = s3_backends[account_id]["global"].get_bucket(bucket).keys
    except Exception:  # moto raises its own error for a missing bucket
        return None
    if version_id is None:
        found = keys.get(key)
    else:
        versions = keys.getlist(key, default=[])
        found = next((obj for obj in versions if str(obj.version_id) == version_id), None)
    return found if isinstance(found, FakeKey) else None


def _current_version(account_id: str, bucket: str, key: str) -> str | None:
    obj = _moto_object(account_id, bucket, key, None)
    return None if obj is None else str(obj.version_id or NULL_VERSION)


def _moto_alias_target(account_id: str, region: str, alias: str) -> str | None:
    """The ARN of the KMS key an alias names in moto's KMS, without creating any key."""
    from moto.kms.models import kms_backends

    try:
        keys = list(kms_backends[account_id][region].keys.values())
    except (KeyError, RuntimeError):
        return None
    return next((str(key.arn) for key in keys if alias in key.aliases), None)
