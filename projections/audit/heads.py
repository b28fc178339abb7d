"""Signed tree heads: the deployment's signed statements of what the trail held, and when."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from infra.settings import Settings
from infra.sql import Database
from projections.audit.leaves import select
from projections.audit.merkle import TreeHeadSigner, load_or_create_signing_key
from projections.audit.trail import AuditTrail, now_ms

STH_FIELDS = ("tree_size", "root_hash", "timestamp_ms", "signature")


def signing_key_path(settings: Settings) -> Path:
    return settings.audit_key_path or settings.data_dir / "audit-signing-key.pem"


def signing_key(settings: Settings) -> TreeHeadSigner:
    return load_or_create_signing_key(signing_key_path(settings))


def key_id(public_pem: bytes) -> str:
    """A short name for a public key, so heads signed by a replaced key can be told apart."""
    return hashlib.sha256(public_pem).hexdigest()[:16]


class TreeHeads:
    def __init__(self, db: Database, signer: TreeHeadSigner | None = None) -> None:
        """Without a signer the heads can be read but not issued."""
        self.db = db
        self.signer = signer

    def issue(self, trail: AuditTrail) -> dict[str, Any]:
        """Signs the trail as it stands now (the caller catches it up first if it wants the
        head to cover the store's newest events)."""
        with trail.lock:
            size, root = trail.size, trail.tree.root()
        latest = self.latest()
        # Strictly later than the last head, so heads order by time as well as by size.
        stamp = max(now_ms(), latest["timestamp_ms"] + 1 if latest else 0)
        if self.signer is None:
            raise RuntimeError("no signing key: tree heads cannot be issued here")
        head: dict[str, Any] = self.signer.sign(size, root, stamp)
        head["key_id"] = key_id(self.signer.public_pem())
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO audit_tree_heads (tree_size, timestamp_ms, root_hash, signature, "
                "key_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (size, stamp, head["root_hash"], head["signature"], head["key_id"]),
            )
        return head

    def latest(self) -> dict[str, Any] | None:
        heads = self._query("ORDER BY timestamp_ms DESC, tree_size DESC LIMIT 1")
        return heads[0] if heads else None

    def covering(self, size: int) -> dict[str, Any] | None:
        """The newest head that covers the first ``size`` leaves."""
        heads = self._query("WHERE tree_size >= ? ORDER BY timestamp_ms DESC LIMIT 1", (size,))
        return heads[0] if heads else None

    def of_size(self, size: int) -> dict[str, Any] | None:
        heads = self._query("WHERE tree_size = ? ORDER BY timestamp_ms DESC LIMIT 1", (size,))
        return heads[0] if heads else None

    def all(self) -> list[dict[str, Any]]:
        return self._query("ORDER BY tree_size, timestamp_ms")

    def _query(self, tail: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        rows = select(
            self.db,
            "SELECT tree_size, root_hash, timestamp_ms, signature, key_id "
            f"FROM audit_tree_heads {tail}",
            params,
        )
        return [
            {
                "tree_size": int(r[0]),
                "root_hash": str(r[1]),
                "timestamp_ms": int(r[2]),
                "signature": str(r[3]),
                "key_id": str(r[4]),
            }
            for r in rows
        ]


def sth(head: dict[str, Any]) -> dict[str, Any]:
    """The head as proofs.verify_tree_head reads it (without the key name)."""
    return {k: head[k] for k in STH_FIELDS}
