"""The figures of a fault run, as a table for people (pytest -s, chaos) and a dict for
files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tests.support.faults import Injected
from tests.support.load import Sent


def figures(
    ledger: Sequence[Sent],
    injected: Sequence[Injected],
    events: Sequence[Any],
    settle_s: float,
    audit: str,
    plan: Any,
) -> dict[str, Any]:
    results = Counter(s.result for s in ledger)
    channels = Counter(s.channel for s in ledger)
    accepted_by = Counter(s.channel for s in ledger if s.result == "accepted")
    transient: Counter[str] = Counter()
    for s in ledger:
        transient.update(s.transient)
    races = {s.race for s in ledger if s.race}
    recovered = [f.recovered_s for f in injected if f.recovered_s is not None]
    latencies = sorted(s.finished - s.started for s in ledger if s.finished)
    return {
        "store": plan.store,
        "seed": plan.seed,
        "commands sent": len(ledger),
        "  over HTTP": channels["http"],
        "  over Kafka": channels["kafka"],
        "accepted": results["accepted"],
        "  over HTTP / Kafka": f"{accepted_by['http']} / {accepted_by['kafka']}",
        "refused (a rule said no)": results["refused"],
        "rejected (dead letter)": results["rejected"],
        "no answer": results["unknown"],
        "retries (same key / command id)": sum(max(s.attempts - 1, 0) for s in ledger),
        "raced decisions (groups)": len(races),
        "faults injected": len(injected),
        "recovery time, max s": max(recovered, default=0.0),
        "recovery time, mean s": round(sum(recovered) / len(recovered), 2) if recovered else 0,
        "settle after load, s": settle_s,
        "command latency p50 / max, s": (
            f"{latencies[len(latencies) // 2]:.2f} / {latencies[-1]:.2f}" if latencies else "-"
        ),
        "events stored": len(events),
        "audit verify": audit,
        "retry causes": ", ".join(f"{k} ×{n}" for k, n in transient.most_common(6)) or "-",
    }


def render(numbers: dict[str, Any], injected: Sequence[Injected]) -> str:
    width = max(len(k) for k in numbers)
    lines = ["", "fault run figures", "-" * (width + 30)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in numbers.items()]
    header = f"{'at s':>6}  {'fault':<26} {'target':<22} {'down s':>7} {'recovery s':>10}  note"
    lines += ["", header, "-" * 90]
    for f in injected:
        recovered = "-" if f.recovered_s is None else f"{f.recovered_s:.2f}"
        lines.append(
            f"{f.at_s:>6.1f}  {f.kind:<26} {f.target:<22} {f.down_s:>7.2f} "
            f"{recovered:>10}  {f.note}"
        )
    return "\n".join(lines)
