"""Wistia's webhook signature: X-Wistia-Signature is the hex HMAC-SHA256 of the raw request
body, keyed with the webhook's secret key (docs.wistia.com/docs/webhooks)."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "x-wistia-signature"
# A SHA-256 digest in hex.
SIGNATURE_CHARS = 64


def signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signed_by(body: bytes, header: str, secret: str) -> bool:
    """True when `header` is the body's signature with `secret`, compared in constant time
    (case-insensitive hex, surrounding blanks ignored)."""
    given = header.strip().lower()
    if len(given) != SIGNATURE_CHARS:
        return False
    return hmac.compare_digest(given.encode("ascii", "replace"), signature(body, secret).encode())
