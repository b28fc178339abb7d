"""Does the trail (audit_leaves) hold exactly the leaves a scan of the store computed, at the
places it computed them?

On SQLite the trail compares itself: the scan's leaf hashes go in as one blob and only two
counts come back. Reading the window back instead costs a Python tuple of three objects per
leaf, as much CPU as hashing the leaf. Either way the verdict is the same: the window holds
one row per leaf index, each with the scan's sequence number and hash there. Anything else
(a hash of another type, a leaf index that is no integer, a hole) makes the counts differ.

Standard library only: it runs in the helper process of projections/audit/store_part.py.
"""

from __future__ import annotations

from operator import itemgetter

TYPE_CHECKING = False  # typing costs the helper process's start-up more than it checks
if TYPE_CHECKING:
    from collections.abc import Sequence

    from projections.audit.leaf_hashes import Select

WINDOW = 20_000
HASH = 32

# ?1, ?2: the window of leaf indexes; ?3: the sequence number at ?1 (the scan's numbers run
# on by one there); ?4: the scan's leaf hashes from ?1 on, joined.
_COUNT_MATCHING = (
    "SELECT count(*), count(CASE WHEN typeof(leaf_index) = 'integer' "
    "AND seq = ?3 + (leaf_index - ?1) "
    f"AND leaf_hash = substr(?4, {HASH} * (leaf_index - ?1) + 1, {HASH}) THEN 1 END) "
    "FROM audit_leaves WHERE leaf_index >= ?1 AND leaf_index < ?2"
)
_ROWS = (
    "SELECT leaf_index, seq, leaf_hash FROM audit_leaves "
    "WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index"
)


def trail_matches(
    trail: Select,
    start: int,
    recorded: int,
    seqs: Sequence[int],
    leaves: bytes,
    sqlite: bool = True,
) -> bool:
    """Does the trail hold exactly these leaves at indexes start, start + 1, … (as far as the
    ``recorded`` leaves it counted reach)? ``sqlite``: the trail is an SQLite table."""
    end = min(start + len(seqs), recorded)
    for lo in range(start, end, WINDOW):
        hi = min(end, lo + WINDOW)
        i, j = lo - start, hi - start
        window_seqs, window_leaves = seqs[i:j], leaves[HASH * i : HASH * j]
        if sqlite and _consecutive(window_seqs):
            matched = _counted(trail, lo, hi, window_seqs[0], window_leaves)
        else:
            matched = _read_back(trail, lo, hi, window_seqs, window_leaves)
        if not matched:
            return False
    return True


def _consecutive(seqs: Sequence[int]) -> bool:
    """As SQLite numbers rows that were never deleted."""
    return list(seqs) == list(range(seqs[0], seqs[0] + len(seqs)))


def _counted(trail: Select, lo: int, hi: int, first_seq: int, leaves: bytes) -> bool:
    rows = trail(_COUNT_MATCHING, (lo, hi, first_seq, leaves))
    return list(rows[0]) == [hi - lo, hi - lo]


def _read_back(trail: Select, lo: int, hi: int, seqs: Sequence[int], leaves: bytes) -> bool:
    rows = trail(_ROWS, (lo, hi))
    return (
        list(map(itemgetter(0), rows)) == list(range(lo, hi))
        and list(map(itemgetter(1), rows)) == list(seqs)
        and b"".join(map(itemgetter(2), rows)) == leaves
    )
