"""S3: one HEAD per object and a SigV4 presigned GET URL for Wistia to fetch."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from s3_to_wistia.errors import ObjectGone, PermanentError, RetryableError
from s3_to_wistia.model import ObjectInfo, ObjectRef, PresignedUrl

GONE_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound"})
REPLACED_CODES = frozenset({"412", "PreconditionFailed"})


class Storage:
    def __init__(
        self, s3_client: Any, credentials: Any, signer: Callable[[], Any] | None = None
    ) -> None:
        self._s3 = s3_client
        self._credentials = credentials
        # When set, presigned URLs are signed by this client's long-term keys instead.
        self._signer = signer

    def head(self, obj: ObjectRef) -> ObjectInfo:
        params: dict[str, str] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id:
            params["VersionId"] = obj.version_id
        elif obj.etag:
            # Unversioned bucket: the key may already hold newer bytes, which their own
            # event will import. Importing them now would record them under this event.
            params["IfMatch"] = f'"{obj.etag.strip(chr(34))}"'
        try:
            answer = self._s3.head_object(**params)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            if code in GONE_CODES:
                raise ObjectGone("the object was deleted before it could be imported") from error
            if code in REPLACED_CODES:
                raise ObjectGone(
                    "the object was overwritten before it could be imported; "
                    "the newer object's own event imports it"
                ) from error
            raise _classified(error, "read the object's metadata") from error
        except BotoCoreError as error:
            raise RetryableError(f"S3 HEAD failed: {error}") from error
        return ObjectInfo(
            size=int(answer.get("ContentLength", 0)),
            content_type=answer.get("ContentType"),
            metadata={k.lower(): v for k, v in (answer.get("Metadata") or {}).items()},
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
