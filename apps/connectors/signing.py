"""Standard Webhooks signatures (https://www.standardwebhooks.com): secrets `whsec_<base64 of
24 random bytes>`, `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`,
several signatures separated by spaces while a rotated-out secret still overlaps."""

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for (the base64 after the prefix)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(*, secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of the message."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Signer:
    """Signs many messages with the same secrets: the keys decoded and the HMAC states keyed
    once (a drain signs a whole backlog), each message then costs one copy and one update."""

    def __init__(self, secrets_: list[str]) -> None:
        self._keyed = [
            hmac.new(secret_key(secret), digestmod=hashlib.sha256) for secret in secrets_
        ]

    def header(self, *, webhook_id: str, timestamp: int, body: bytes) -> str:
        """The `webhook-signature` value: one signature per valid secret, space-separated."""
        signed = f"{webhook_id}.{timestamp}.".encode() + body
        signatures = []
        for keyed in self._keyed:
            mac = keyed.copy()
            mac.update(signed)
            signatures.append("v1," + base64.b64encode(mac.digest()).decode())
        return " ".join(signatures)


def signature_header(*, secrets_: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one signature per valid secret, space-separated."""
    return Signer(secrets_).header(webhook_id=webhook_id, timestamp=timestamp, body=body)
