"""Rules over per-unit statistics that say, in plain words, what is wrong with a network.

``diagnose(model, data)`` collects statistics (:func:`netxray.stats.collect_stats`) and
applies the rules; ``diagnose_stats(stats)`` applies them to statistics you already have
(a training-loop monitor reuses it). Each rule returns :class:`Finding` objects carrying the
numbers behind them (``evidence``) and specific advice. Rules are written to avoid the
classic false alarms:

- a *dead* unit is a ReLU-family unit that is never positive; a Linear output that happens
  to be negative is not dead;
- saturation is counted per unit as the fraction of inputs inside the saturated band, so a
  tanh unit saturated on 90% of inputs is saturated;
- *vanishing* gradients shrink toward the input (the first layers get tiny gradients);
- once NaN/Inf appear, the report says so first and adds no advice computed from garbage.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from netxray._results import Result
from netxray.stats import LayerStats, NetworkStats

if TYPE_CHECKING:
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
    and ``skipped`` (checks not run, and why).
    """

    findings: tuple[Finding, ...]
    stats: NetworkStats | None
    n_samples: int
    loss: float | None = None
    expected_loss: float | None = None
    weights: WeightHealth | None = None
    skipped: tuple[str, ...] = ()
    context: str = "diagnose"

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
            header = f"{'layer':<16}{'type':<10}{'units':>6}{'RMS':>10}{'active':>8}{'satur.':>8}{'dead':>6}{'NaN/Inf':>9}{'grad RMS':>11}"
            lines.append(header)
            for r in rows:
                sat = "-" if r["frac_saturated"] is None else f"{r['frac_saturated']:.0%}"
                dead = "-" if r["dead"] is None else str(r["dead"])
                grad = "-" if r["grad_rms"] is None else _fmt(r["grad_rms"])
                act = "-" if math.isnan(r["frac_active"]) else f"{r['frac_active']:.0%}"
                lines.append(
                    f"{r['layer'][:15]:<16}{r['type'][:9]:<10}{r['units']:>6}{_fmt(r['scale']):>10}"
                    f"{act:>8}{sat:>8}{dead:>6}{r['nonfinite']:>9}{grad:>11}"
                )
        return "\n".join(lines)

    def report_data(self) -> dict[str, Any]:
        """A compact, JSON-ready view for the HTML report and the dashboard: findings, the
        per-layer table, per-unit activity (frac_active, frac_saturated, dead) and each
        layer's histogram pooled over units (with its edges), weight health and notes.
        Unlike ``to_dict`` it leaves out per-unit histograms and raw moments."""
        layers = []
        if self.stats is not None:
            rows = {r["layer"]: r for r in self.layer_table()}
            for name, s in self.stats.items():
                dead = (s.frac_active == 0) & (s.count > 0) if s.family == "relu" else None
                layers.append({
                    **rows[name],
                    "unit_frac_active": s.frac_active.tolist(),
                    "unit_frac_saturated": (
                        s.frac_saturated.tolist() if s.saturation is not None else None
                    ),
                    "unit_dead": None if dead is None else dead.tolist(),
                    "hist": s.hist.sum(0).tolist(),
                    "hist_edges": s.hist_edges.tolist(),
                })
        weights = None
        if self.weights is not None:
            weights = [lw.to_dict() for lw in self.weights.layers.values()]
        return _json_safe({
            "context": self.context,
            "n_samples": self.n_samples,
            "loss": self.loss,
            "expected_loss": self.expected_loss,
            "exit_code": self.exit_code,
            "findings": [f.to_dict() for f in self.findings],
            "layers": layers,
            "weights": weights,
            "skipped": list(self.skipped),
        })

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as JSON (non-finite numbers become null)."""
        return json.dumps(_json_safe(self.to_dict()), indent=indent)


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


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


def _samples(s: LayerStats) -> int:
    """Inputs seen by a layer (its per-unit count divided by positions per unit)."""
    positions = max(int(np.prod(s.shape)) // max(s.units, 1), 1) * max(s.calls, 1)
    total = int((s.count + s.nan_count + s.inf_count).max()) if s.units else 0
    return total // positions if positions else total


def _idx(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.flatnonzero(mask))


def _share_severity(n: int, units: int, *, warn: float, error: float | None, few: bool) -> str:
    share = n / max(units, 1)
    if few:
        return "info"
    if error is not None and share >= error:
        return "error"
    return "warning" if share >= warn else "info"


# --------------------------------------------------------------------------------------
# rules
# --------------------------------------------------------------------------------------


def _rule_nonfinite(stats: NetworkStats, history: Any) -> list[Finding]:
    out: list[Finding] = []
    losses = _history_losses(history)
    bad_epoch = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    if bad_epoch is not None:
        last_ok = losses[bad_epoch - 1] if bad_epoch > 0 else None
        out.append(
            Finding(
                kind="loss_diverged",
                severity="error",
                layer=None,
                units=(),
                evidence={"first_nonfinite_epoch": bad_epoch + 1, "last_finite_loss": last_ok,
                          "first_loss": losses[0]},
                advice=(
                    f"The training loss became {losses[bad_epoch]} at epoch {bad_epoch + 1}"
                    + (f" (it was {_fmt(last_ok)} the epoch before)" if last_ok is not None else "")
                    + ": training diverged, so the weights are no longer meaningful. Common "
                    "causes: a learning rate too high, no gradient clipping, inputs not "
                    "standardized. Try: lower the learning rate 10x, clip gradients "
                    "(torch.nn.utils.clip_grad_norm_), standardize the inputs."
                ),
            )
        )
    bad_params = [p for p in stats.params.values() if not math.isfinite(p.weight_norm)]
    if bad_params:
        names = [p.name for p in bad_params]
        out.append(
            Finding(
                kind="nonfinite",
                severity="error",
                layer=names[0].rsplit(".", 1)[0] or None,
                units=(),
                evidence={"parameters": names},
                advice=(
                    f"{_plural(len(names), 'parameter')} hold NaN or Inf (first: "
                    f"`{names[0]}`). Every output computed from them is garbage, so no other "
                    "check is meaningful. Usual cause: training diverged (learning rate too "
                    "high). Try: retrain with a 10x lower learning rate and gradient clipping."
                ),
            )
        )
    first = next((s for s in stats.values() if s.n_nonfinite > 0), None)
    if first is not None:
        later = [s.name for s in stats.values() if s.n_nonfinite > 0 and s.name != first.name]
        nan, inf = int(first.nan_count.sum()), int(first.inf_count.sum())
        units_hit = first.nan_count + first.inf_count > 0
        out.append(
            Finding(
                kind="nonfinite",
                severity="error",
                layer=first.name,
                units=_idx(units_hit),
                evidence={"nan": nan, "inf": inf, "units_affected": int(units_hit.sum()),
                          "units": first.units, "later_layers": later},
                advice=(
                    f"NaN/Inf first appear (in forward order) in `{first.name}`: {nan:,} NaN and "
                    f"{inf:,} Inf values in {int(units_hit.sum())} of {first.units} units"
                    + (f"; they propagate to {', '.join(later[:4])}" if later else "")
                    + ". Statistics after this point are computed from garbage and are not "
                    "reported. Common causes: diverged training (weights blew up), log or "
                    "division of zero, overflow in exp. Try: lower the learning rate, clip "
                    "gradients, check this layer's weights, run with "
                    "torch.autograd.set_detect_anomaly(True)."
                ),
            )
        )
    if stats.loss is not None and not math.isfinite(stats.loss) and not out:
        out.append(
            Finding(
                kind="nonfinite",
                severity="error",
                layer=None,
                units=(),
                evidence={"loss": stats.loss},
                advice=(
                    f"The loss over the data is {stats.loss} although every recorded layer "
                    "is finite: the outputs overflow in the loss (e.g. logits too large for "
                    "the softmax) or the targets are invalid. Try: check the targets, lower "
                    "the learning rate, use a numerically stable loss (cross_entropy on logits)."
                ),
            )
        )
    bad_grads = [s.name for s in stats.values()
                 if s.grad_norm is not None and not math.isfinite(s.grad_norm)]
    if bad_grads and not out:
        out.append(
            Finding(
                kind="nonfinite",
                severity="error",
                layer=bad_grads[-1],
                units=(),
                evidence={"layers": bad_grads},
                advice=(
                    f"Gradients are NaN/Inf at {', '.join(bad_grads)} although the forward "
                    "pass is finite: the backward pass overflows. Try: gradient clipping, a "
                    "lower learning rate, checking custom autograd functions."
                ),
            )
        )
    return out


def _rule_dead_dying(s: LayerStats, th: Thresholds, context: str = "diagnose") -> list[Finding]:
    if s.family != "relu":
        return []
    seen = s.count > 0
    n = _samples(s)
    few = n < th.min_samples
    out = []
    dead = seen & (s.frac_active == 0)
    if dead.any():
        k = int(dead.sum())
        out.append(
            Finding(
                kind="dead_units",
                severity=_share_severity(k, s.units, warn=0.25, error=0.5, few=few),
                layer=s.name,
                units=_idx(dead),
                evidence={"dead": k, "units": s.units, "inputs": n, "share": k / s.units,
                          "max_activation": float(np.nanmax(s.max[dead]))},
                advice=(
                    f"{k} of {s.units} units in `{s.name}` never activate on {n:,} inputs "
                    f"({k / s.units:.0%} of the layer); they pass no gradient, so they cannot "
                    + (
                        "recover. At init this happens when the data reaches these units only "
                        "through their negative side: low-dimensional or uncentred inputs, "
                        "zero or negative biases. Try: standardize the inputs, a small "
                        "positive bias (0.01), LeakyReLU/GELU."
                        if context == "precheck"
                        else "recover. Common causes: a learning rate too high for this init, "
                        "large negative biases. Try: lower lr, LeakyReLU/GELU, He init."
                    )
                    + (f" (Only {n} inputs: a unit may just not fire on these few.)" if few else "")
                ),
            )
        )
    dying = seen & (s.frac_active > 0) & (s.frac_active < th.dying_fraction)
    if dying.any():
        k = int(dying.sum())
        out.append(
            Finding(
                kind="dying_units",
                severity=_share_severity(k, s.units, warn=0.25, error=None, few=few),
                layer=s.name,
                units=_idx(dying),
                evidence={"dying": k, "units": s.units, "inputs": n,
                          "frac_active": [float(v) for v in s.frac_active[dying]],
                          "threshold": th.dying_fraction},
                advice=(
                    f"{k} of {s.units} units in `{s.name}` are active on fewer than "
                    f"{th.dying_fraction:.0%} of {n:,} inputs: they are close to dying and "
                    "learn from very few examples. Try: "
                    + ("standardize the inputs, a small positive bias, LeakyReLU/GELU."
                       if context == "precheck"
                       else "a lower learning rate, LeakyReLU/GELU, smaller negative biases.")
                ),
            )
        )
    return out


def _rule_saturated(s: LayerStats, th: Thresholds) -> list[Finding]:
    if s.saturation is None:
        return []
    seen = s.count > 0
    sat = seen & (s.frac_saturated >= th.saturated_fraction)
    if not sat.any():
        return []
    k = int(sat.sum())
    n = _samples(s)
    lo, hi = s.saturation
    band = f"|a| > {hi:g}" if s.family == "tanh" else f"a < {lo:g} or a > {hi:g}"
    return [
        Finding(
            kind="saturated_units",
            severity=_share_severity(k, s.units, warn=0.25, error=None, few=n < th.min_samples),
            layer=s.name,
            units=_idx(sat),
            evidence={"saturated": k, "units": s.units, "inputs": n, "band": [lo, hi],
                      "threshold": th.saturated_fraction,
                      "mean_frac_saturated": float(s.frac_saturated[seen].mean())},
            advice=(
                f"{k} of {s.units} {s.family} units in `{s.name}` are saturated ({band}) on at "
                f"least {th.saturated_fraction:.0%} of {n:,} inputs; there their gradient is "
                "almost zero, so they barely learn. Common causes: weights initialised too "
                "large, unscaled inputs, a learning rate that pushed pre-activations far out. "
                "Try: Xavier/Glorot init, standardize inputs, normalization layers, or ReLU-"
                "family activations."
            ),
        )
    ]


def _rule_constant(s: LayerStats, th: Thresholds) -> list[Finding]:
    seen = s.count > 1
    const = seen & (s.var <= th.constant_rtol * np.maximum(1.0, s.mean**2))
    if s.family == "relu":
        const &= s.frac_active > 0  # never-active units are reported as dead
    if s.saturation is not None:
        const &= s.frac_saturated < th.saturated_fraction  # reported as saturated
    if not const.any():
        return []
    k = int(const.sum())
    values = [float(v) for v in s.mean[const][:8]]
    return [
        Finding(
            kind="constant_units",
            severity="warning",
            layer=s.name,
            units=_idx(const),
            evidence={"constant": k, "units": s.units, "inputs": _samples(s), "values": values},
            advice=(
                f"{k} of {s.units} units in `{s.name}` output the same value on every input "
                f"(e.g. {_fmt(values[0])}); they carry no information about the input. Common "
                "causes: zero input weights, an input feature that is constant, a layer "
                "upstream that collapsed. Try: check the inputs' variance and this layer's "
                "weights; re-initialise."
            ),
        )
    ]


_UNBOUNDED = ("relu", "rectifier", "linear")


def _rule_exploding_activations(stats: NetworkStats, th: Thresholds) -> list[Finding]:
    layers = [s for s in stats.values() if s.family in _UNBOUNDED and math.isfinite(s.scale)]
    if not layers:
        return []
    scales = {s.name: s.scale for s in layers}
    over = [s for s in layers if s.scale > th.activation_bound]
    growth = None
    if len(layers) >= 3 and layers[0].scale > 0:
        growth = layers[-1].scale / layers[0].scale
    grows = growth is not None and growth >= th.activation_growth
    if not over and not grows:
        return []
    per_layer = growth ** (1 / (len(layers) - 1)) if growth else None
    where = over[0] if over else layers[-1]
    what = (
        f"The activation scale (RMS) grows from {_fmt(layers[0].scale)} in `{layers[0].name}` "
        f"to {_fmt(layers[-1].scale)} in `{layers[-1].name}` (x{_fmt(per_layer)} per layer)"
        if grows
        else f"The activation scale (RMS) of `{where.name}` is {_fmt(where.scale)}, above "
        f"{_fmt(th.activation_bound)}"
    )
    return [
        Finding(
            kind="exploding_activations",
            severity="error" if over and where.scale > th.activation_bound**2 else "warning",
            layer=where.name,
            units=(),
            evidence={"scales": scales, "growth": growth, "per_layer": per_layer,
                      "bound": th.activation_bound},
            advice=(
                what + ". Large activations make the loss and the gradients blow up. Common "
                "causes: weights initialised too large for the depth, no normalization, "
                "unscaled inputs. Try: He init for ReLU (Xavier for tanh), BatchNorm/"
                "LayerNorm between layers, standardize the inputs."
            ),
        )
    ]


def _rule_gradients(stats: NetworkStats, th: Thresholds) -> list[Finding]:
    layers = [s for s in stats.values() if s.grad_rms is not None]
    if len(layers) < 2:
        return []
    first, last = layers[0], layers[-1]  # forward order: first is nearest the INPUT
    g0, g1 = first.grad_rms, last.grad_rms
    if not (g1 and g1 > 0 and math.isfinite(g0) and math.isfinite(g1)):
        return []
    ratio = g0 / g1
    per_layer = ratio ** (1 / (len(layers) - 1)) if ratio > 0 else 0.0
    ev = {"grad_rms": {s.name: s.grad_rms for s in layers}, "ratio_first_to_last": ratio,
          "per_layer": per_layer, "threshold": th.gradient_ratio}
    dead_between = [
        s.name for s in stats.values()
        if s.family == "relu" and s.units and ((s.frac_active == 0) & (s.count > 0)).mean() >= 0.5
    ]
    if ratio < 1 / th.gradient_ratio:
        how = (
            f"no gradient at all reaches `{first.name}` (RMS 0; {_fmt(g1)} at `{last.name}`)"
            if ratio == 0
            else f"the gradient RMS at `{first.name}` is {_fmt(g0)}, {_fmt(1 / ratio)}x smaller "
            f"than at `{last.name}` ({_fmt(g1)}); x{_fmt(per_layer)} per layer"
        )
        cause = (
            f"Here most units of {', '.join(f'`{n}`' for n in dead_between)} are dead, and dead "
            "ReLUs pass no gradient: fix those first."
            if dead_between
            else "Common causes: sigmoid/tanh in a deep stack, saturated units, too-small init. "
            "Try: ReLU-family activations, He/Xavier init, residual connections, "
            "normalization layers."
        )
        return [
            Finding(
                kind="vanishing_gradients",
                severity="error" if ratio < 1 / th.gradient_ratio**2 else "warning",
                layer=first.name,
                units=(),
                evidence=ev,
                advice=f"Gradients shrink toward the input: {how}. The first layers barely "
                f"learn. {cause}",
            )
        ]
    if ratio > th.gradient_ratio:
        return [
            Finding(
                kind="exploding_gradients",
                severity="error" if ratio > th.gradient_ratio**2 else "warning",
                layer=first.name,
                units=(),
                evidence=ev,
                advice=(
                    f"Gradients grow toward the input: the gradient RMS at `{first.name}` is "
                    f"{_fmt(g0)}, {_fmt(ratio)}x larger than at `{last.name}` ({_fmt(g1)}); "
                    f"x{_fmt(per_layer)} per layer. Updates to the first layers will be far "
                    "too large. Common causes: weights initialised too large for the depth, "
                    "no normalization. Try: He/Xavier init, gradient clipping, normalization "
                    "layers, a lower learning rate."
                ),
            )
        ]
    return []


def _rule_loss_rising(history: Any, th: Thresholds) -> list[Finding]:
    """A finite training loss that ended well above its best: training is going backwards."""
    losses = _history_losses(history)
    if len(losses) < 5 or not all(math.isfinite(v) for v in losses):
        return []
    best = min(losses)
    at = losses.index(best)
    final = losses[-1]
    if not (final > th.loss_rise * best and final > best + 1e-12 and at < len(losses) - 1):
        return []
    return [
        Finding(
            kind="loss_rising",
            severity="warning",
            layer=None,
            units=(),
            evidence={"best_loss": best, "best_epoch": at + 1, "final_loss": final,
                      "ratio": final / best if best > 0 else math.inf},
            advice=(
                f"The training loss ended at {_fmt(final)}, {final / best:.1f}x its best "
                f"({_fmt(best)} at epoch {at + 1}): training is going backwards. Common "
                "causes: a learning rate too high for this stage of training, no learning-"
                "rate decay, an optimizer overshooting. Try: lower the learning rate or decay "
                "it, clip gradients, keep the checkpoint of the best epoch."
            ),
        )
    ]


def _history_losses(history: Any) -> list[float]:
    if history is None:
        return []
    losses = getattr(history, "train_loss", history)
    return [float(v) for v in losses]


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


def diagnose_stats(
    stats: NetworkStats,
    *,
    history: Any = None,
    weights: WeightHealth | None = None,
    steps: int | None = None,
    thresholds: Thresholds | None = None,
    context: str = "diagnose",
    expected_loss: float | None = None,
    extra: Sequence[Finding] = (),
) -> HealthReport:
    """Apply every rule to statistics already collected; return a :class:`HealthReport`.

    ``history``: a TrainingHistory (or a list of per-epoch losses) to check for divergence;
    ``weights``: a :class:`netxray.weights.WeightHealth` (with ``steps``, the number of
    optimizer steps between its two checkpoints, update ratios are judged).
    """
    th = thresholds or Thresholds()
    skipped: list[str] = []
    findings = _rule_nonfinite(stats, history)
    rest: list[Finding] = []
    if weights is not None:
        from netxray.weights import weight_findings

        rest = weight_findings(weights, steps=steps, thresholds=th)
    if findings:
        skipped.append(
            "every other check: values are non-finite (or the loss diverged), so statistics "
            "computed from them would give misleading advice"
        )
    else:
        findings = list(extra) + rest + _rule_loss_rising(history, th)
        for s in stats.values():
            findings += _rule_dead_dying(s, th, context)
            findings += _rule_saturated(s, th)
            findings += _rule_constant(s, th)
        findings += _rule_exploding_activations(stats, th)
        if any(s.grad_norm is not None for s in stats.values()):
            findings += _rule_gradients(stats, th)
        else:
            skipped.append("gradients: pass targets (or a loss_fn) to check them")
    return HealthReport(
        findings=_sorted(findings, list(stats)),
        stats=stats,
        n_samples=stats.n_samples,
        loss=stats.loss,
        expected_loss=expected_loss,
        weights=weights,
        skipped=tuple(skipped),
        context=context,
    )


# --------------------------------------------------------------------------------------
# entry points with a model
# --------------------------------------------------------------------------------------


def default_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for integer class targets, mean squared error for float targets."""
    if targets.is_floating_point():
        return nn.functional.mse_loss(outputs, targets.to(outputs.dtype))
    return nn.functional.cross_entropy(outputs, targets)


def _peek(data: Any, batch_size: int) -> tuple[Any, Iterator[tuple[torch.Tensor, Any]]]:
    """The first batch's targets (or None), and the batches (the first one replayed)."""
    from netxray.capture import iter_batches

    it = iter_batches(data, batch_size)
    first = next(it)

    def replay() -> Iterator[tuple[torch.Tensor, Any]]:
        yield first
        yield from it

    return first[1], replay()


def _pairs(batches: Iterator[tuple[torch.Tensor, Any]]) -> Iterator[Any]:
    for x, y in batches:
        yield x if y is None else (x, y)


def diagnose(
    model: nn.Module,
    data: Any,
    layers: Any = None,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    history: Any = None,
    previous_weights: Any = None,
    steps: int | None = None,
    batch_size: int = 1024,
    thresholds: Thresholds | None = None,
    allow_train: bool = False,
    bins: int = 32,
) -> HealthReport:
    """Run ``model`` over ``data`` and report what is wrong with it, in plain words.

    ``data``: a tensor, an ``(X, y)`` pair, a DataLoader or an iterable of batches. With
    targets, gradients are checked too (``loss_fn`` defaults to cross-entropy for integer
    targets, MSE for float ones; it must return the batch mean). ``history``: the
    TrainingHistory (checked for divergence). ``previous_weights``: an earlier state dict
    (or model) to measure update ratios against, over ``steps`` optimizer steps.
    The model's weights, mode, ``.grad`` and ``requires_grad`` are left as they were.
    ``bins``: histogram bins per unit kept in the report's statistics (0: none).
    """
    from netxray.stats import collect_stats
    from netxray.weights import weight_health

    y0, batches = _peek(data, batch_size)
    has_y = y0 is not None
    fn = loss_fn if loss_fn is not None else default_loss
    stats = collect_stats(
        model, _pairs(batches), layers, gradients=has_y, loss_fn=fn if has_y else None,
        batch_size=batch_size, allow_train=allow_train, bins=bins,
    )
    weights = weight_health(model, previous_weights)
    return diagnose_stats(stats, history=history, weights=weights, steps=steps,
                          thresholds=thresholds)


def precheck(
    model: nn.Module,
    data: Any,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    layers: Any = None,
    batch_size: int = 1024,
    thresholds: Thresholds | None = None,
    bins: int = 32,
) -> HealthReport:
    """Check a model before training: loss at init against ln(classes), activation scale
    per layer, dead/saturated units and gradient flow at init.

    For a classifier with C balanced classes, an untrained network should predict about
    uniformly, so its cross-entropy should be near ln(C); much higher means the output
    layer starts overconfident. Returns a :class:`HealthReport` (``expected_loss`` set).
    """
    from netxray.stats import collect_stats

    th = thresholds or Thresholds()
    y0, batches = _peek(data, batch_size)
    has_y = y0 is not None
    fn = loss_fn if loss_fn is not None else default_loss
    stats = collect_stats(model, _pairs(batches), layers, gradients=has_y,
                          loss_fn=fn if has_y else None, batch_size=batch_size, bins=bins)
    expected = None
    extra: list[Finding] = []
    classes = None
    out_shape = stats.output_shape
    if has_y and loss_fn is None and not y0.is_floating_point() and len(out_shape) == 1:
        classes = out_shape[0]
    if classes is not None and classes >= 2:
        expected = math.log(classes)
        loss = stats.loss
        if loss is not None and math.isfinite(loss) and loss > th.initial_loss_ratio * expected:
            extra.append(
                Finding(
                    kind="initial_loss",
                    severity="warning",
                    layer=None,
                    units=(),
                    evidence={"loss": loss, "expected": expected, "classes": classes},
                    advice=(
                        f"The loss at init is {_fmt(loss)}, {loss / expected:.1f}x ln({classes}) "
                        f"= {_fmt(expected)}, the loss of a uniform guess: the untrained network "
                        "is confidently wrong, and the first steps will be spent shrinking the "
                        "logits. Common causes: a last layer initialised too large, unscaled "
                        "inputs. Try: scale the last layer's weights down (e.g. x0.01), "
                        "standardize the inputs."
                    ),
                )
            )
    return diagnose_stats(stats, thresholds=th, context="precheck", expected_loss=expected,
                          extra=extra)


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


__all__ = [
    "KINDS",
    "Finding",
    "HealthReport",
    "Thresholds",
    "diagnose",
    "diagnose_stats",
    "precheck",
    "render_findings",
    "default_loss",
]
