"""`kosh audit export CASE_ID`: one file an auditor can check with proofs.py and the public key.

The leaves are read from the store as it is now, the proofs from the trail: if the store was
altered since the trail recorded an event, the exported file fails the offline check, which
is what the auditor must see.
"""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

from projections.audit.heads import TreeHeads, sth
from projections.audit.leaves import read_rows
from projections.audit.proofs import EXPORT_FORMAT
from projections.audit.trail import AuditTrail


class NotInTrail(LookupError):
    pass


def export_case(case_id: UUID, trail: AuditTrail, heads: TreeHeads) -> dict[str, Any]:
    """The case's events with inclusion proofs under one signed tree head; a head is issued
    when none yet covers the case's newest event."""
    trail.sync()
    trail.catch_up()
    records = trail.records(case_id)
    if not records:
        raise NotInTrail(f"the audit trail holds no event of case {case_id}")
    needed = max(int(r["leaf_index"]) for r in records) + 1
    head = heads.covering(needed) or heads.issue(trail)
    size = int(head["tree_size"])
    events = []
    for record in records:
        seq, index = int(record["seq"]), int(record["leaf_index"])
        rows = read_rows(trail.store, seq - 1, 1, upto=seq)
        with trail.lock:
            proof = trail.tree.inclusion_proof(index, size)
        events.append(
            {
                "sequence": seq,
                "leaf_index": index,
                # A removed row exports as no bytes: the check then names it.
                "leaf_b64": base64.b64encode(rows[0].leaf()).decode() if rows else "",
                "inclusion_proof": [h.hex() for h in proof],
                "summary": {k: v for k, v in record.items() if k not in ("seq", "leaf_index")},
            }
        )
    return {
        "format": EXPORT_FORMAT,
        "case_id": str(case_id),
        "tree_head": sth(head),
        "key_id": head["key_id"],
        "events": events,
    }
