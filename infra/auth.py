"""Who is calling: signed JWTs (HS256, key from configuration) or API keys stored only
as hashes. Used by HTTP and by the Kafka command intake alike."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from infra.settings import Settings
from infra.sql import Database

ROLES = (
    "registrar",
    "migration_officer",
    "akimat_planner",
    "authorised_body",
    "auditor",
    "operator",
    "service",
    "data_protection_officer",
)
API_KEY_PREFIX = "kosh_"


class AuthenticationError(Exception):
    """No credentials, or credentials that do not verify (HTTP 401)."""


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: tuple[str, ...]
    organisation: str

    @property
    def role(self) -> str:
        return self.roles[0]


def signing_secret(settings: Settings) -> bytes:
    """KOSH_JWT_SECRET, or a per-deployment secret created once under the data dir."""
    if settings.jwt_secret:
        return settings.jwt_secret.encode()
    path = Path(settings.data_dir) / "jwt-secret"
    if path in _FILE_SECRETS:
        return _FILE_SECRETS[path]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    _FILE_SECRETS[path] = path.read_text().strip().encode()
    return _FILE_SECRETS[path]


_FILE_SECRETS: dict[Path, bytes] = {}  # written once, never changed: read once


def issue_token(settings: Settings, subject: str, roles: list[str] | tuple[str, ...],
                organisation: str = "", ttl_s: int | None = None) -> str:
    unknown = set(roles) - set(ROLES)
    if not roles or unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}; choose from {', '.join(ROLES)}")
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer, "sub": subject, "roles": list(roles),
        "org": organisation, "iat": now, "exp": now + (ttl_s or settings.token_ttl_s),
    }
    return jwt.encode(claims, signing_secret(settings), algorithm="HS256")


# A service sends the same token with every command until it expires; checking its
# signature once is enough. Keyed by the secret too, so a changed secret checks again.
_VERIFIED: dict[tuple[bytes, str, str], tuple[Principal, float]] = {}
_VERIFIED_MAX = 10_000


def verify_token(settings: Settings, token: str) -> Principal:
    key = (signing_secret(settings), settings.jwt_issuer, token)
    hit = _VERIFIED.get(key)
    if hit is not None and time.time() < hit[1]:
        return hit[0]
    principal, expires = _verify(key[0], settings.jwt_issuer, token)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[key] = (principal, expires)
    return principal


def _verify(secret: bytes, issuer: str, token: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], issuer=issuer,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("the token has expired") from None
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"the token is not valid: {exc}") from None
    roles = tuple(r for r in claims.get("roles", ()) if r in ROLES)
    if not roles:
        raise AuthenticationError("the token names no known role")
    return Principal(str(claims["sub"]), roles, str(claims.get("org", ""))), float(claims["exp"])


class ApiKeyStore:
    """API keys are shown once at creation; only a SHA-256 of the secret is kept (the
    secret is 256 random bits, so a slow hash adds nothing)."""

    _DDL = """CREATE TABLE IF NOT EXISTS kosh_api_keys (
        key_id TEXT PRIMARY KEY,
        secret_sha256 TEXT NOT NULL,
        subject TEXT NOT NULL,
        roles TEXT NOT NULL,
        organisation TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    )"""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction() as cur:
            cur.execute(self._DDL)

    def create(self, subject: str, roles: list[str], organisation: str = "") -> str:
        if not roles or set(roles) - set(ROLES):
            raise ValueError(f"unknown role(s); choose from {', '.join(ROLES)}")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO kosh_api_keys (key_id, secret_sha256, subject, roles, organisation,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, _sha256(secret), subject, ",".join(roles), organisation, time.time()),
            )
        return f"{API_KEY_PREFIX}{key_id}_{secret}"

    def revoke(self, key_id: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("UPDATE kosh_api_keys SET revoked = 1 WHERE key_id = ?", (key_id,))

    def verify(self, api_key: str) -> Principal:
        if not api_key.startswith(API_KEY_PREFIX) or api_key.count("_") < 2:
            raise AuthenticationError("the API key is malformed")
        key_id, secret = api_key[len(API_KEY_PREFIX):].split("_", 1)
        rows = self.db.query(
            "SELECT secret_sha256, subject, roles, organisation, revoked FROM kosh_api_keys "
            "WHERE key_id = ?", (key_id,),
        )
        if not rows or not hmac.compare_digest(rows[0][0], _sha256(secret)):
            raise AuthenticationError("the API key is not valid")
        if rows[0][4]:
            raise AuthenticationError("the API key was revoked")
        return Principal(rows[0][1], tuple(rows[0][2].split(",")), rows[0][3])


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
