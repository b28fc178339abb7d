"""Bad input for every command, as hypothesis strategies: arbitrary JSON, bytes, and valid
commands with one part broken (a field replaced, dropped or added)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.support.builders import iin_for, registration_body

ADDRESS = {"district": "Medeu", "line": "Dostyk 5, flat 2"}
HOUSING = {"type": "private", "useful_area_m2": 80.0, "occupants_after_registration": 3}

# A valid body of every command type (the case it acts on comes from the caller).
VALID: dict[str, dict[str, Any]] = {
    "submit_registration": registration_body(7),
    "approve_registration": {},
    "refuse_registration": {"reason": "no lease presented"},
    "establish_quota": {
        "kind": "settler",
        "territory": "Medeu",
        "period": "2029",
        "limit": 10,
        "effective_date": "2025-11-01",
    },
    "draft_proposal": {
        "kind": "include_territory",
        "categories": ["kandas"],
        "rationale": "need",
        "effective_date": "2025-12-01",
    },
    "submit_proposal": {},
    "accept_proposal": {},
    "decline_proposal": {"reasons": "not now"},
    "apply_for_relocation": {
        "category": "kandas",
        "territory": "Almaty",
        "period": "2026",
        "applicant": {"iin": iin_for(9), "family_name": "F", "given_name": "G"},
        "effective_date": "2026-03-01",
    },
    "approve_relocation": {"effective_date": "2026-03-01"},
    "refuse_relocation": {"reason": "documents withdrawn"},
    "withdraw_relocation": {},
    "record_arrival": {"address": ADDRESS, "housing": HOUSING, "effective_date": "2026-03-01"},
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "",
            "0",
            "-1",
            "2026-02-30",
            "Almaty",
            "kandas",
            "permanent",
            "1e309",
            "\u0000",
            "x" * 5000,
            iin_for(3),
            "123456789012",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any, drop: bool) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        if drop and not rest:
            out.pop(head, None)
        else:
            out[head] = _replace(value[head], rest, new, drop)
        return out
    out_list = list(value)
    out_list[head] = _replace(value[head], rest, new, drop)
    return out_list


@st.composite
def broken(draw: st.DrawFn, valid: Any) -> Any:
    """`valid` with one part replaced by arbitrary JSON, dropped, or an unknown field added."""
    paths = _paths(valid)
    how = draw(st.sampled_from(["replace", "drop", "add"] if paths else ["add"]))
    if how == "add" or not isinstance(valid, dict):
        if not isinstance(valid, dict):
            return draw(json_values)
        return {**valid, draw(st.text(min_size=1, max_size=12)): draw(json_values)}
    path = draw(st.sampled_from(paths))
    return _replace(valid, path, draw(json_values), drop=how == "drop")


def bodies(command_type: str) -> st.SearchStrategy[Any]:
    """What a confused or hostile sender might post as this command's body."""
    return st.one_of(json_values, broken(VALID[command_type]))
