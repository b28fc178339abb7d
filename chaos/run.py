"""`python -m chaos.run` (`make chaos`): long fault runs on both stores. Many more
commands and faults than the suite in `make test`: every process killed several times,
the broker emptied, PostgreSQL restarted, the registers' disk filled, in a seeded random
order; then the same checker. Exit status 1 when any run finds a problem.

    python -m chaos.run --store both --faults 20 --rounds 2 --seed 7
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from pathlib import Path

from tests.support.faults import FullDisk
from tests.support.faults_postgres import unavailable_reason
from tests.support.faults_scenario import KILLABLE, Plan, Scenario


def schedule(store: str, count: int, rng: random.Random) -> list[str]:
    """Every kind of fault at least once (where this machine allows it), the rest drawn
    at random; the scenario shuffles them."""
    kinds = [f"kill:{role}" for role in KILLABLE] + ["broker"]
    if store == "postgres":
        kinds.append("postgres")
    elif FullDisk.unavailable_reason() is None:
        kinds.append("disk_full")
    picked = list(kinds)
    while len(picked) < count:
        picked.append(rng.choice(kinds))
    return picked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=1, help="runs per store")
    parser.add_argument("--faults", type=int, default=16, help="faults per run")
    parser.add_argument("--workers", type=int, default=8, help="load threads")
    parser.add_argument(
        "--gap",
        type=float,
        nargs=2,
        default=(1.0, 4.0),
        metavar=("MIN", "MAX"),
        help="seconds of load between two faults",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where each run's data and figures go (default data/chaos-<time>)",
    )
    args = parser.parse_args(argv)

    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)
    out = args.out or Path("data") / f"chaos-{dt.datetime.now():%Y%m%d-%H%M%S}"
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    failed = 0
    for store in stores:
        if store == "postgres" and (reason := unavailable_reason()):
            print(f"postgres runs skipped: {reason}")
            continue
        for n in range(args.rounds):
            run_seed = rng.randrange(10**6)
            plan = Plan(
                store,
                schedule(store, args.faults, random.Random(run_seed)),
                (out / f"{store}-{n + 1}").resolve(),
                seed=run_seed,
                workers=args.workers,
                gap_s=tuple(args.gap),
                quota_limit=60,
            )
            print(
                f"== {store} run {n + 1}/{args.rounds}, seed {run_seed}, {len(plan.faults)} faults",
                flush=True,
            )
            try:
                outcome = Scenario(plan).run()
            except AssertionError as exc:  # the system did not recover at all
                print(f"FAILED: {exc}")
                failed += 1
                continue
            print(outcome.table)
            if outcome.problems:
                failed += 1
                print(f"FAILED: {len(outcome.problems)} problem(s)")
                print("\n".join(outcome.problems[:50]))
            else:
                print("OK: nothing lost, nothing applied twice, no quota over its limit")
            print(f"figures: {plan.data_dir / 'fault-figures.txt'}", flush=True)
    print(f"chaos seed {seed}: {failed} failed run(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
