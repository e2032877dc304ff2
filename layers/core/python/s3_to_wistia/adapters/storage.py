"""S3: the object's metadata (HEAD), a SigV4 presigned GET URL for Wistia to fetch, and a
one-byte ranged GET through that URL, which meets what Wistia's fetch would meet."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import urllib3
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError

from s3_to_wistia.errors import ObjectGone, PermanentError, RetryableError
from s3_to_wistia.model import ObjectInfo, ObjectRef, PresignedUrl, ProbeAnswer
from s3_to_wistia.rules import SSE_C_REASON

GONE_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound"})
REPLACED_CODES = frozenset({"412", "PreconditionFailed"})
# S3 answers a HEAD without the key of an SSE-C object with a bare 400.
SSE_C_CODES = frozenset({"400", "InvalidRequest", "BadRequest"})
# An S3 error body is a small XML document; more is not one.
MAX_ERROR_BYTES = 16 * 1024
_XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")
OVERWRITTEN = (
    "the object was overwritten before it could be imported; "
    "the newer object's own event imports it"
)


class Storage:
    def __init__(
        self,
        s3_client: Any,
        credentials: Any,
        signer: Callable[[], Any] | None = None,
        http: urllib3.PoolManager | None = None,
        probe_timeout: urllib3.Timeout | None = None,
    ) -> None:
        self._s3 = s3_client
        self._credentials = credentials
        # When set, presigned URLs are signed by this client's long-term keys instead.
        self._signer = signer
        self._http = http or urllib3.PoolManager()
        self._probe_timeout = probe_timeout or urllib3.Timeout(connect=3.05, read=10)

    def head(self, obj: ObjectRef) -> ObjectInfo:
        """The object version's metadata. In a versioned bucket the key's latest version is
        asked first: a delete marker there means the object was deleted, even though the
        version itself is still kept (one request when the version is the latest)."""
        params: dict[str, str] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id:
            latest = self._head(params, deleted_is_gone=True)
            if latest.get("VersionId") == obj.version_id:
                return _info(latest)
            params["VersionId"] = obj.version_id
        elif obj.etag:
            # Unversioned bucket: the key may already hold newer bytes, which their own
            # event will import. Importing them now would record them under this event.
            params["IfMatch"] = f'"{obj.etag.strip(chr(34))}"'
        return _info(self._head(params))

    def _head(self, params: dict[str, str], deleted_is_gone: bool = False) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = self._s3.head_object(**params)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            if code in GONE_CODES:
                if deleted_is_gone and headers.get("x-amz-delete-marker") == "true":
                    raise ObjectGone(
                        "the object was deleted (a delete marker is its latest version) "
                        "before it could be imported"
                    ) from error
                raise ObjectGone("the object was deleted before it could be imported") from error
            if code in REPLACED_CODES:
                raise ObjectGone(OVERWRITTEN) from error
            if code in SSE_C_CODES:
                raise PermanentError(SSE_C_REASON, 400) from error
            raise _classified(error, "read the object's metadata") from error
        except BotoCoreError as error:
            raise RetryableError(f"S3 HEAD failed: {error}") from error
        return answer

    def probe(self, url: str) -> ProbeAnswer:
        """GET the first byte through the presigned URL, as Wistia's fetch will GET it all."""
        try:
            # The pool for the URL's host, asked for the path and query: urllib3 parses a
            # presigned URL (hundreds of characters) once this way, not twice.
            parts = urlsplit(url)
            pool = self._http.connection_from_host(parts.hostname, parts.port, parts.scheme)
            response = pool.urlopen(
                "GET",
                f"{parts.path}?{parts.query}" if parts.query else parts.path,
                headers={"Range": "bytes=0-0"},
                timeout=self._probe_timeout,
                retries=False,
                redirect=False,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                body = response.read(MAX_ERROR_BYTES)
            finally:
                response.release_conn()
        except (HTTPError, OSError) as error:
            # urllib3's words name the host only, never the URL's query: kept as they are.
            raise RetryableError(
                f"could not reach S3 with the presigned URL: {type(error).__name__}"
            ) from error
        fields = dict(_XML_FIELD.findall(body.decode("utf-8", errors="replace")))
        return ProbeAnswer(
            status=response.status,
            error_code=fields.get("Code") if response.status >= 300 else None,
            error_message=fields.get("Message") if response.status >= 300 else None,
            etag=response.headers.get("ETag"),
        )

    def presign(self, obj: ObjectRef, expires_in: int) -> PresignedUrl:
        params: dict[str, str] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id:
            params["VersionId"] = obj.version_id
        now = time.time()
        if self._signer is not None:
            url = self._signer().generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_in
            )
            return PresignedUrl(url=url, expires_at=now + expires_in)
        url = self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        expires_at = now + expires_in
        credentials_expire = credentials_expiry(self._credentials)
        if credentials_expire is not None:
            expires_at = min(expires_at, credentials_expire)
        return PresignedUrl(url=url, expires_at=expires_at)


def _info(answer: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        size=int(answer.get("ContentLength", 0)),
        content_type=answer.get("ContentType"),
        metadata={k.lower(): v for k, v in (answer.get("Metadata") or {}).items()},
        storage_class=answer.get("StorageClass"),
        archive_status=answer.get("ArchiveStatus"),
        restore=answer.get("Restore"),
        encryption=answer.get("ServerSideEncryption"),
        kms_key_id=answer.get("SSEKMSKeyId"),
        etag=answer.get("ETag"),
        version_id=answer.get("VersionId"),
    )


def credentials_expiry(credentials: Any) -> float | None:
    """When the signing credentials die, where botocore knows it.

    A presigned URL dies with its credentials whatever X-Amz-Expires says. Refreshable
    credentials (assumed roles, container credentials, AWS_CREDENTIAL_EXPIRATION) carry
    their expiry; long-term keys have none.
    """
    if isinstance(credentials, RefreshableCredentials):
        expiry = credentials._expiry_time  # botocore has no public accessor for it
        if expiry is not None:
            return float(expiry.timestamp())
    return None


def _classified(error: ClientError, doing: str) -> Exception:
    code = str(error.response.get("Error", {}).get("Code"))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if status >= 500 or code in {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException"}:
        return RetryableError(f"S3 could not {doing} ({code})")
    return PermanentError(f"S3 refused to {doing} ({code}): check the function's permissions")
