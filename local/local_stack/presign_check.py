"""S3's presigned-URL checks, which moto's server does not make.

Real S3 refuses a presigned GET whose signature does not match, whose X-Amz-Expires
has passed, or whose signing credentials have expired. The Wistia emulator fetches the
URLs this project signs, so the local stack must refuse them the same way, or a test
could pass here and fail against AWS.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MAX_EXPIRES = 7 * 24 * 3600
SIGV4_TIME = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class SigningKey:
    secret_key: str
    session_token: str | None = None
    # Temporary credentials die at this epoch second, and every URL they signed with them.
    expires_at: float | None = None


class PresignedUrlCheck:
    """WSGI middleware: checks SigV4 query-string auth before moto sees the request."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        keys: Mapping[str, SigningKey],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._keys = keys
        self._clock = clock

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        query = environ.get("QUERY_STRING", "")
        if "X-Amz-Signature=" not in query:
            return self._app(environ, start_response)
        refusal = self.refusal(environ)
        if refusal is None:
            return self._app(environ, start_response)
        status, code, message = refusal
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ).encode()
        start_response(
            status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def refusal(self, environ: Mapping[str, Any]) -> tuple[str, str, str] | None:
        """Why S3 would refuse this presigned request, or None when it is good."""
        params = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        given = dict(params)
        try:
            access_key = given["X-Amz-Credential"].split("/")[0]
            signed_at = datetime.strptime(given["X-Amz-Date"], SIGV4_TIME).replace(tzinfo=UTC)
            expires = int(given["X-Amz-Expires"])
            region = given["X-Amz-Credential"].split("/")[2]
        except (KeyError, IndexError, ValueError):
            return (
                "400 Bad Request",
                "AuthorizationQueryParametersError",
                "Malformed presigned URL",
            )
        if not 1 <= expires <= MAX_EXPIRES:
            return (
                "400 Bad Request",
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be between 1 and 604800 seconds",
            )
        key = self._keys.get(access_key)
        if key is None:
            return (
                "403 Forbidden",
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        now = self._clock()
        if now > signed_at.timestamp() + expires:
            return ("403 Forbidden", "AccessDenied", "Request has expired")
        if key.expires_at is not None and now > key.expires_at:
            return ("400 Bad Request", "ExpiredToken", "The provided token has expired.")
        expected = self._signature(environ, params, access_key, key, region)
        if not hmac.compare_digest(given["X-Amz-Signature"], expected):
            return (
                "403 Forbidden",
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None

    @staticmethod
    def _signature(
        environ: Mapping[str, Any],
        params: list[tuple[str, str]],
        access_key: str,
        key: SigningKey,
        region: str,
    ) -> str:
        # Re-sign the request exactly as received: the raw path as the client encoded it and
        # every query parameter but the signature itself.
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
        raw_path = raw_path.split("?", 1)[0]
        request = AWSRequest(
            method=environ["REQUEST_METHOD"],
            url=f"http://{environ['HTTP_HOST']}{raw_path}",
            params=[(k, v) for k, v in params if k != "X-Amz-Signature"],
            headers=_signed_headers(environ, dict(params).get("X-Amz-SignedHeaders", "")),
        )
        request.context["timestamp"] = dict(params)["X-Amz-Date"]
        credentials = Credentials(access_key, key.secret_key, key.session_token)
        auth = S3SigV4QueryAuth(credentials, "s3", region)
        canonical = auth.canonical_request(request)
        return str(auth.signature(auth.string_to_sign(request, canonical), request))


def _signed_headers(environ: Mapping[str, Any], names: str) -> dict[str, str]:
    """The headers a URL's signature covers besides the host (the SSE-C headers of a URL
    signed for them), as the client sent them: a missing one makes the signature differ."""
    headers = {}
    for name in names.split(";"):
        if not name or name == "host":
            continue
        variable = name.upper().replace("-", "_")
        if variable not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            variable = f"HTTP_{variable}"
        value = environ.get(variable)
        if value is not None:
            headers[name] = str(value)
    return headers
