"""Command payloads sealed for the ride over Kafka: a service that sends personal data
(IINs, names, documents, addresses) seals the payload with the deployment's command key
(AES-256-GCM, the command id as associated data), so the commands topic never holds them
in clear. Services import this module, or follow it: base64(nonce ‖ ciphertext)."""

from __future__ import annotations

import base64
import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.erasure import PERSONAL_FIELDS


class UnreadablePayload(Exception):
    pass


def command_key(encoded: str) -> bytes:
    key = base64.b64decode(encoded)
    if len(key) != 32:
        raise ValueError("the command key is 32 random bytes, base64-encoded")
    return key


def seal_payload(key: bytes, command_id: str, payload: dict[str, Any]) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, orjson.dumps(payload), command_id.encode())
    return base64.b64encode(nonce + sealed).decode()


def open_payload(key: bytes, command_id: str, sealed: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(sealed, validate=True)
        opened = orjson.loads(AESGCM(key).decrypt(raw[:12], raw[12:], command_id.encode()))
    except (ValueError, InvalidTag, orjson.JSONDecodeError):
        raise UnreadablePayload("the sealed payload does not open with the command key "
                                "(wrong key, altered, or sealed for another command id)") from None
    if not isinstance(opened, dict):
        raise UnreadablePayload("the sealed payload is not a JSON object")
    return opened


def personal_fields_in(value: Any) -> list[str]:
    """Names of personal fields present (non-null) anywhere in `value`."""
    if isinstance(value, list):
        return [f for v in value for f in personal_fields_in(v)]
    if isinstance(value, dict):
        return [f for k, v in value.items()
                for f in ([k] if k in PERSONAL_FIELDS and v is not None
                          else personal_fields_in(v))]
    return []
