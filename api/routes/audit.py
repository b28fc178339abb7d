"""For auditors: the signing key, signed tree heads, inclusion and consistency proofs, and the
trail's record of a case. Everything here verifies with projections/audit/proofs.py alone."""

from __future__ import annotations

import base64
import threading
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from api.routes.common import kosh_of
from api.threads import run_in_threadpool
from projections.audit.heads import TreeHeads, key_id, signing_key
from projections.audit.leaves import read_rows
from projections.audit.trail import AuditTrail

router = APIRouter(prefix="/audit", tags=["audit"])
_lock = threading.Lock()


class _Audit:
    def __init__(self, trail: AuditTrail, heads: TreeHeads) -> None:
        self.trail = trail
        self.heads = heads


def audit_of(request: Request) -> _Audit:
    """One trail mirror per running API, brought level with the table on each use."""
    state = request.app.state
    with _lock:
        if getattr(state, "audit", None) is None:
            settings = kosh_of(request).settings
            trail = AuditTrail(settings)
            state.audit = _Audit(trail, TreeHeads(trail.db, signing_key(settings)))
    audit: _Audit = state.audit
    return audit


@router.get(
    "/public-key",
    response_class=Response,
    responses={200: {"content": {"application/x-pem-file": {}}}},
)
async def public_key(request: Request) -> Response:
    """The Ed25519 public key (PEM) that verifies every signed tree head."""
    audit = await run_in_threadpool(audit_of, request)
    assert audit.heads.signer is not None
    pem = audit.heads.signer.public_pem()
    return Response(
        pem, media_type="application/x-pem-file", headers={"X-Kosh-Key-Id": key_id(pem)}
    )


@router.get("/tree-head")
async def latest_tree_head(request: Request) -> dict[str, Any]:
    """The newest signed tree head."""
    audit = await run_in_threadpool(audit_of, request)
    head = await run_in_threadpool(audit.heads.latest)
    if head is None:
        raise HTTPException(404, detail="no tree head signed yet; POST /audit/tree-heads")
    return head


@router.post("/tree-heads", status_code=201)
async def issue_tree_head(request: Request) -> dict[str, Any]:
    """Signs a tree head now, over every event the store holds."""
    audit = await run_in_threadpool(audit_of, request)

    def issue() -> dict[str, Any]:
        audit.trail.sync()
        audit.trail.catch_up()
        return audit.heads.issue(audit.trail)

    return await run_in_threadpool(issue)


@router.get("/inclusion/{seq}")
async def inclusion(
    seq: int,
    request: Request,
    tree_size: int | None = Query(None, ge=1, description="default: the newest signed head's"),
) -> dict[str, Any]:
    """The proof that event ``seq`` is leaf ``leaf_index`` of the tree of ``tree_size``
    leaves, with the event's leaf bytes as the store holds them now."""
    audit = await run_in_threadpool(audit_of, request)
    return await run_in_threadpool(_inclusion, audit, seq, tree_size)


def _inclusion(audit: _Audit, seq: int, tree_size: int | None) -> dict[str, Any]:
    trail = audit.trail
    trail.sync()
    index = trail.leaf_index_of(seq)
    if index is None:
        raise HTTPException(404, detail=f"event {seq} is not in the audit trail (yet)")
    size = tree_size
    if size is None:  # the newest signed head if it covers the event, else the whole trail
        latest = audit.heads.latest()
        size = latest["tree_size"] if latest and latest["tree_size"] > index else trail.size
    with trail.lock:
        if not index < size <= trail.size:
            raise HTTPException(
                422,
                detail=f"tree_size must be in {index + 1}..{trail.size} "
                f"for event {seq} (leaf {index})",
            )
        proof, root, recorded = (
            trail.tree.inclusion_proof(index, size),
            trail.tree.root(size),
            trail.tree.leaf_hash(index),
        )
    rows = read_rows(trail.store, seq - 1, 1, upto=seq)
    return {
        "sequence": seq,
        "leaf_index": index,
        "tree_size": size,
        "root_hash": root.hex(),
        "leaf_hash": recorded.hex(),
        "leaf_b64": base64.b64encode(rows[0].leaf()).decode() if rows else None,
        "inclusion_proof": [h.hex() for h in proof],
        "tree_head": audit.heads.of_size(size),
    }


@router.get("/consistency")
async def consistency(
    request: Request,
    first: int = Query(..., ge=0, description="size of the older tree"),
    second: int | None = Query(None, ge=0, description="size of the newer tree; default: now"),
) -> dict[str, Any]:
    """The proof that the tree of ``second`` leaves extends the tree of ``first`` leaves."""
    audit = await run_in_threadpool(audit_of, request)
    return await run_in_threadpool(_consistency, audit, first, second)


def _consistency(audit: _Audit, first: int, second: int | None) -> dict[str, Any]:
    trail = audit.trail
    trail.sync()
    with trail.lock:
        second = trail.size if second is None else second
        if not first <= second <= trail.size:
            raise HTTPException(422, detail=f"need first <= second <= {trail.size}")
        proof = trail.tree.consistency_proof(first, second)
        roots = trail.tree.root(first), trail.tree.root(second)
    return {
        "first": first,
        "second": second,
        "first_root": roots[0].hex(),
        "second_root": roots[1].hex(),
        "consistency_proof": [h.hex() for h in proof],
        "first_head": audit.heads.of_size(first),
        "second_head": audit.heads.of_size(second),
    }


@router.get("/events")
async def case_trail(request: Request, case_id: UUID) -> dict[str, Any]:
    """What the trail recorded for each event of a case: actor, role, organisation, recorded
    time, effective date, legal act and clause, correlation and causation ids."""
    audit = await run_in_threadpool(audit_of, request)

    def records() -> list[dict[str, Any]]:
        audit.trail.sync()
        return audit.trail.records(case_id)

    found = await run_in_threadpool(records)
    if not found:
        raise HTTPException(404, detail=f"the audit trail holds no event of case {case_id}")
    return {"case_id": str(case_id), "events": found}
