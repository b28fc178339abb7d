"""The figures of one run, written as bench/RESULTS.md (for people) and
bench/results.json (one key per figure, plain numbers)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Figure:
    key: str
    value: float
    unit: str
    what: str
    baseline: str | None = None  # key of the figure it is compared to
    ratio_key: str | None = None


@dataclass
class Target:
    name: str
    met: bool
    measured: str
    why: str = ""
    profile: list[str] = field(default_factory=list)
    # Run after every section, while the run's time budget lasts: profiles are slow.
    profile_job: Callable[[], list[str]] | None = None


@dataclass
class Results:
    quick: bool
    figures: dict[str, Figure] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(
        self, key: str, value: float, unit: str, what: str, baseline: str | None = None
    ) -> float:
        fig = Figure(key, round(float(value), 3), unit, what, baseline)
        self.figures[key] = fig
        if baseline is not None and baseline in self.figures:
            base = self.figures[baseline].value
            fig.ratio_key = f"{key}_ratio"
            ratio = fig.value / base if base else 0.0
            self.figures[fig.ratio_key] = Figure(
                fig.ratio_key, round(ratio, 3), "×", f"{key} / {baseline}"
            )
        return fig.value

    def value(self, key: str) -> float | None:
        fig = self.figures.get(key)
        return None if fig is None else fig.value

    def target(
        self,
        name: str,
        met: bool,
        measured: str,
        why: str = "",
        profile_job: Callable[[], list[str]] | None = None,
    ) -> None:
        self.targets.append(Target(name, met, measured, why, profile_job=profile_job))

    def as_json(self) -> dict[str, float]:
        out: dict[str, float] = {"cores": float(os.cpu_count() or 0)}
        out.update({k: f.value for k, f in self.figures.items()})
        return out

    def write(self, out_dir: Path, seconds: float) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(self.as_json(), indent=2) + "\n")
        (out_dir / "RESULTS.md").write_text(self.markdown(seconds))

    def markdown(self, seconds: float) -> str:
        mode = (
            "make bench-quick (smoke sizes: figures are not comparable)"
            if self.quick
            else "make bench"
        )
        lines = [
            "# Kosh benchmark results",
            "",
            f"Written by `{mode}` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in "
            f"{seconds:.0f} s. Machine: {os.cpu_count()} cores, {platform.machine()}, "
            f"Python {platform.python_version()}, {platform.system()}. Every baseline was "
            "measured in the same run, so the ratios are the figures to compare across "
            "machines.",
            "",
            "| figure | value | baseline (same run) | ratio |",
            "|---|---:|---|---:|",
        ]
        ratios = {f.ratio_key for f in self.figures.values() if f.ratio_key}
        for fig in self.figures.values():
            if fig.key in ratios:
                continue
            base, ratio = "—", "—"
            if fig.baseline and fig.baseline in self.figures:
                b = self.figures[fig.baseline]
                base = f"{b.what}: {_num(b.value)} {b.unit}"
                if fig.ratio_key:
                    ratio = f"{self.figures[fig.ratio_key].value:.2f}×"
            lines.append(
                f"| {fig.what} (`{fig.key}`) | {_num(fig.value)} {fig.unit} | {base} | {ratio} |"
            )
        lines += ["", "## Targets", ""]
        for t in self.targets:
            mark = "met" if t.met else "**missed**"
            if self.quick:
                mark = "not judged at smoke sizes"
            lines.append(f"- {t.name}: {mark} — {t.measured}")
            if t.why:
                lines.append(f"  - why: {t.why}")
            if t.profile:
                lines.append("  - profile (py-spy):")
                lines.append("")
                lines.append("    ```")
                lines += [f"    {p}" for p in t.profile]
                lines.append("    ```")
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        if self.failures:
            lines += ["", "## Sections that failed", ""] + [f"- {f}" for f in self.failures]
        return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"
