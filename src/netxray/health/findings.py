"""What a health check reports: :class:`Finding`, :class:`HealthReport`, :class:`Thresholds`.

A finding is one problem in plain words with the numbers behind it; a report holds the
findings (errors first), the statistics they came from and a text summary for a terminal.
The rules that make findings are in :mod:`netxray.health.rules`.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netxray._results import Result, to_plain

if TYPE_CHECKING:
    from netxray.stats import NetworkStats
    from netxray.weights import WeightHealth

SEVERITIES = ("info", "warning", "error")

#: Every kind of finding, in the order a report lists them.
KINDS = (
    "loss_diverged",
    "loss_rising",
    "nonfinite",
    "initial_loss",
    "dead_units",
    "dying_units",
    "saturated_units",
    "constant_units",
    "exploding_activations",
    "vanishing_gradients",
    "exploding_gradients",
    "large_updates",
)


@dataclass(frozen=True, eq=False)
class Finding(Result):
    """One problem: its ``kind``, ``severity`` (info/warning/error), the ``layer`` (dotted
    name; None for the whole network), the affected ``units`` (indices), the numbers behind
    it (``evidence``) and ``advice`` in plain words (what, common causes, what to try)."""

    kind: str
    severity: str
    layer: str | None
    units: tuple[int, ...]
    evidence: dict[str, Any]
    advice: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def __str__(self) -> str:
        where = f" [{self.layer}]" if self.layer else ""
        return f"{self.severity.upper()} {self.kind}{where}: {self.advice}"


@dataclass(frozen=True)
class Thresholds:
    """The numbers every rule compares against (defaults are conservative)."""

    dying_fraction: float = 0.01  # a ReLU unit active on fewer inputs than this is dying
    gate_dead_bound: float = 1e-3  # a GELU/SiLU unit never > 0 and always within this of 0 is dead
    saturated_fraction: float = 0.5  # a unit saturated on at least this share is saturated
    min_samples: int = 100  # fewer inputs than this: per-unit findings are only "info"
    constant_rtol: float = 1e-10  # var <= rtol * max(1, mean^2) counts as constant
    activation_bound: float = 1e3  # an RMS activation above this is exploding
    activation_growth: float = 100.0  # last/first RMS above this across depth is exploding
    gradient_ratio: float = 100.0  # first/last gradient RMS beyond 1/this or this
    initial_loss_ratio: float = 2.0  # precheck: loss at init above this x ln(classes)
    update_ratio: float = 1e-2  # per-step ||dW|| / ||W|| above this is too large
    loss_rise: float = 2.0  # a final training loss this many times its best is rising


@dataclass(frozen=True, eq=False)
class HealthReport(Result):
    """What :func:`diagnose` / :func:`precheck` found.

    ``findings`` (errors first), ``stats`` (the statistics behind them), ``n_samples``,
    ``loss`` (mean over the data, when targets were given), ``expected_loss`` (precheck:
    ln of the number of classes), ``weights`` (spectral norms, stable ranks, update ratios)
    ``skipped`` (checks not run, and why) and ``pretrained`` (the weights come from
    pre-training: the advice never says to re-initialise them).
    """

    findings: tuple[Finding, ...]
    stats: NetworkStats | None
    n_samples: int
    loss: float | None = None
    expected_loss: float | None = None
    weights: WeightHealth | None = None
    skipped: tuple[str, ...] = ()
    context: str = "diagnose"
    pretrained: bool = False

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def exit_code(self) -> int:
        """For a CLI: 0 healthy (no error-severity finding), 1 otherwise."""
        return 0 if self.ok else 1

    def by_kind(self, kind: str) -> list[Finding]:
        """The findings of one kind."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
        return [f for f in self.findings if f.kind == kind]

    @property
    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}

    def layer_table(self) -> list[dict[str, Any]]:
        """One row per layer in forward order: type, units, scale (RMS), mean fraction
        active and saturated, dead units, non-finite values, gradient RMS."""
        if self.stats is None:
            return []
        rows = []
        for name, s in self.stats.items():
            seen = s.count > 0
            rows.append(
                {
                    "layer": name,
                    "type": s.module_type,
                    "family": s.family,
                    "units": s.units,
                    "scale": s.scale,
                    "frac_active": float(s.frac_active[seen].mean()) if seen.any() else math.nan,
                    "frac_saturated": (
                        float(s.frac_saturated[seen].mean())
                        if s.saturation is not None and seen.any()
                        else None
                    ),
                    "dead": (
                        int(((s.frac_active == 0) & seen).sum())
                        if s.family == "relu" and s.n_nonfinite == 0
                        else None
                    ),
                    "nonfinite": s.n_nonfinite,
                    "grad_rms": s.grad_rms,
                }
            )
        return rows

    def summary(self, width: int = 100) -> str:
        """Plain text for a terminal: a headline, the findings, the per-layer table."""
        n_err = sum(f.severity == "error" for f in self.findings)
        n_warn = sum(f.severity == "warning" for f in self.findings)
        n_info = len(self.findings) - n_err - n_warn
        title = "netxray precheck" if self.context == "precheck" else "netxray health report"
        head = f"{title}: {self.n_samples:,} inputs"
        if self.loss is not None:
            head += f", loss {_fmt(self.loss)}"
        if self.expected_loss is not None:
            head += f" (expected about {_fmt(self.expected_loss)} at init)"
        lines = [head]
        if not self.findings:
            lines.append("No problems found.")
        else:
            lines.append(f"{n_err} error(s), {n_warn} warning(s), {n_info} note(s)")
        for f in self.findings:
            tag = f"{f.severity.upper():7s} {f.kind}" + (f" [{f.layer}]" if f.layer else "")
            lines.append("")
            lines.append(tag)
            lines.extend(textwrap.wrap(f.advice, width=width, initial_indent="  ",
                                       subsequent_indent="  "))
        for s in self.skipped:
            lines.append("")
            lines.extend(textwrap.wrap(f"Not checked: {s}", width=width))
        rows = self.layer_table()
        if rows:
            lines.append("")
            names = _short_names([r["layer"] for r in rows], max(width - _TABLE_REST - 1, 15))
            w = max(15, *map(len, names)) + 1  # (16 as it always was, wider for longer names)
            header = f"{'layer':<{w}}{'type':<10}{'units':>6}{'RMS':>10}{'active':>8}{'satur.':>8}{'dead':>6}{'NaN/Inf':>9}{'grad RMS':>11}"
            lines.append(header)
            for name, r in zip(names, rows, strict=True):
                sat = "-" if r["frac_saturated"] is None else f"{r['frac_saturated']:.0%}"
                dead = "-" if r["dead"] is None else str(r["dead"])
                grad = "-" if r["grad_rms"] is None else _fmt(r["grad_rms"])
                act = "-" if math.isnan(r["frac_active"]) else f"{r['frac_active']:.0%}"
                lines.append(
                    f"{name:<{w}}{r['type'][:9]:<10}{r['units']:>6}{_fmt(r['scale']):>10}"
                    f"{act:>8}{sat:>8}{dead:>6}{r['nonfinite']:>9}{grad:>11}"
                )
        return "\n".join(lines)

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as JSON (non-finite numbers become null)."""
        return json.dumps(to_plain(self), indent=indent)


#: the characters of the layer table's columns after the layer name (and its one space)
_TABLE_REST = 10 + 6 + 10 + 8 + 8 + 6 + 9 + 11


def _short_names(names: Sequence[str], most: int) -> list[str]:
    """Layer names for a table column of at most ``most`` characters. A longer one keeps its
    tail (``...h.0.mlp.act``: the end tells layers apart, the front is the shared path); where
    tails alone would read the same (``bert.encoder.layer.0...e_act_fn``) it keeps its head
    too, as much as tells them apart. If nothing does, every name stays whole (a wide table
    beats two rows that read the same)."""
    for tail in range(most - 3, -1, -1):
        head = most - 3 - tail
        short = [n if len(n) <= most else n[:head] + "..." + n[len(n) - tail:] for n in names]
        if len(set(short)) == len(set(names)):
            return short
    return list(names)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.2e}"
    return f"{x:.3g}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


_ORDER = {k: i for i, k in enumerate(KINDS)}
_SEV = {"error": 0, "warning": 1, "info": 2}


def _sorted(findings: Iterable[Finding], order: Sequence[str]) -> tuple[Finding, ...]:
    pos = {n: i for i, n in enumerate(order)}
    return tuple(
        sorted(
            findings,
            key=lambda f: (_SEV[f.severity], _ORDER.get(f.kind, 99), pos.get(f.layer or "", -1)),
        )
    )


def render_findings(report: HealthReport) -> Any:
    """A ``rich.table.Table`` of the findings (severity, kind, layer, advice) for a terminal."""
    from rich.table import Table

    colors = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    title = "netxray precheck" if report.context == "precheck" else "netxray health report"
    table = Table(title=f"{title}: {report.n_samples:,} inputs", show_lines=True)
    table.add_column("severity")
    table.add_column("kind")
    table.add_column("layer")
    table.add_column("what and what to try")
    for f in report.findings:
        table.add_row(f"[{colors[f.severity]}]{f.severity}[/]", f.kind, f.layer or "-", f.advice)
    if not report.findings:
        table.add_row("[green]ok[/]", "-", "-", "No problems found.")
    return table
