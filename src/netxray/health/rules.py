"""The rules: each ``_rule_*`` function turns statistics into :class:`Finding` objects.

Rules are written to avoid the classic false alarms:

- a *dead* unit is a ReLU-family unit that is never positive; a Linear output that happens
  to be negative is not dead;
- saturation is counted per unit as the fraction of inputs inside the saturated band, so a
  tanh unit saturated on 90% of inputs is saturated;
- *vanishing* gradients shrink toward the input (the first layers get tiny gradients);
- once NaN/Inf appear, the report says so first and adds no advice computed from garbage.

:func:`weight_findings` is the rule over weight health (:mod:`netxray.weights` only
computes the numbers).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from netxray.families import is_smooth_gate
from netxray.health.findings import Finding, Thresholds, _fmt, _plural

if TYPE_CHECKING:
    from netxray.stats import LayerStats, NetworkStats


#: What to try on weights that come from pre-training (``case`` "pretrained": as loaded;
#: "finetuned": since trained further). Never "re-initialise": that throws pre-training away.
_PRETRAINED = {
    "pretrained": (
        "These weights come from pre-training, so do not re-initialise them (that throws the "
        "pre-training away). Try: check that the inputs are prepared as in pre-training (the "
        "same tokenizer, normalisation, padding and attention mask) and that this data is "
        "like what the model was trained on; units specialised for other inputs stay quiet "
        "on yours."
    ),
    "finetuned": (
        "These weights come from pre-training and were trained further, so do not "
        "re-initialise them. Try: compare with the checkpoint as loaded; if it was healthy "
        "there, fine-tuning did this: a lower learning rate (1e-5 to 5e-5 is usual for "
        "BERT-size models), warm-up, gradient clipping."
    ),
}


def _advice(what: str, case: str, otherwise: str) -> str:
    """``what`` is wrong, then what to try: for pretrained weights, or ``otherwise``."""
    return f"{what} {_PRETRAINED[case]}" if case in _PRETRAINED else f"{what} {otherwise}"


def _rows(s: LayerStats) -> str:
    return "tokens" if s.per_token else "inputs"


def _samples(s: LayerStats) -> int:
    """Inputs seen by a layer (its per-unit count divided by positions per unit)."""
    positions = max(math.prod(s.shape) // max(s.units, 1), 1) * max(s.calls, 1)
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


def dead_units(
    family: str,
    module_type: str,
    *,
    seen: np.ndarray,
    active: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    th: Thresholds | None = None,
) -> np.ndarray:
    """Which units of a layer are dead, per unit: the one definition of ``diagnose`` (and
    of :func:`netxray.boundary.unit_maps`' marks).

    ``family``: :func:`netxray.families.activation_family`; ``module_type``: the module's
    class name; ``seen``: the unit had outputs; ``active``: it was ever > 0; ``lo``/``hi``:
    its least and greatest output. ReLU family: never > 0. Smooth gates (GELU, SiLU...):
    never > 0 and always within ``th.gate_dead_bound`` of 0 (their inputs lie far below 0,
    where no gradient passes). Other layers have no dead units.
    """
    seen, active = np.asarray(seen, dtype=bool), np.asarray(active, dtype=bool)
    if family == "relu":
        return seen & ~active
    if family != "rectifier" or not is_smooth_gate(module_type):
        return np.zeros(seen.shape, dtype=bool)
    bound = (th or Thresholds()).gate_dead_bound
    with np.errstate(invalid="ignore"):
        tiny = np.maximum(np.abs(lo), np.abs(hi)) <= bound
    return seen & ~active & tiny


def _dead(s: LayerStats, th: Thresholds) -> np.ndarray:
    return dead_units(s.family, s.module_type, seen=s.count > 0, active=s.frac_active > 0,
                      lo=s.min, hi=s.max, th=th)


def _dead_gates(s: LayerStats, th: Thresholds) -> np.ndarray:
    """Dead units of a smooth gate (GELU, SiLU...); none for other layers."""
    return _dead(s, th) if s.family == "rectifier" else np.zeros(s.units, dtype=bool)


def _rule_dead_dying(s: LayerStats, th: Thresholds, context: str = "diagnose") -> list[Finding]:
    """``context``: "precheck" (at init), "diagnose" (trained), "pretrained" or "finetuned"."""
    gate = s.family == "rectifier"
    if s.family != "relu" and not gate:
        return []
    seen = s.count > 0
    n = _samples(s)
    rows = _rows(s)
    few = n < th.min_samples
    out = []
    dead = _dead(s, th)
    if dead.any():
        k = int(dead.sum())
        what = (
            f"{k} of {s.units} units in `{s.name}` never activate on {n:,} {rows} "
            f"({k / s.units:.0%} of the layer)"
            + (f": their outputs stay within {th.gate_dead_bound:g} of 0, so their inputs lie "
               f"far below 0, where {s.module_type} passes no gradient, and they cannot recover."
               if gate else "; they pass no gradient, so they cannot recover.")
        )
        if context == "precheck":
            fix = ("At init this happens when the data reaches these units only through their "
                   "negative side: low-dimensional or uncentred inputs, zero or negative biases. "
                   "Try: standardize the inputs, a small positive bias (0.01), LeakyReLU/GELU.")
        else:
            fix = ("Common causes: a learning rate too high for this init, large negative "
                   "biases. Try: lower lr, LeakyReLU/GELU, He init.")
        few_note = f" (Only {n} {rows}: a unit may just not fire on these few.)" if few else ""
        out.append(
            Finding(
                kind="dead_units",
                severity=_share_severity(k, s.units, warn=0.25, error=0.5, few=few),
                layer=s.name,
                units=_idx(dead),
                evidence={"dead": k, "units": s.units, "inputs": n, "share": k / s.units,
                          "max_activation": float(np.nanmax(s.max[dead])),
                          "per_token": s.per_token},
                advice=_advice(what, context, fix) + few_note,
            )
        )
    if gate:
        return out
    dying = seen & (s.frac_active > 0) & (s.frac_active < th.dying_fraction)
    if dying.any():
        k = int(dying.sum())
        what = (
            f"{k} of {s.units} units in `{s.name}` are active on fewer than "
            f"{th.dying_fraction:.0%} of {n:,} {rows}: they are close to dying and learn from "
            "very few examples."
        )
        fix = ("Try: standardize the inputs, a small positive bias, LeakyReLU/GELU."
               if context == "precheck"
               else "Try: a lower learning rate, LeakyReLU/GELU, smaller negative biases.")
        out.append(
            Finding(
                kind="dying_units",
                severity=_share_severity(k, s.units, warn=0.25, error=None, few=few),
                layer=s.name,
                units=_idx(dying),
                evidence={"dying": k, "units": s.units, "inputs": n,
                          "frac_active": [float(v) for v in s.frac_active[dying]],
                          "threshold": th.dying_fraction},
                advice=_advice(what, context, fix),
            )
        )
    return out


def _rule_saturated(s: LayerStats, th: Thresholds, context: str = "diagnose") -> list[Finding]:
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
            advice=_advice(
                f"{k} of {s.units} {s.family} units in `{s.name}` are saturated ({band}) on at "
                f"least {th.saturated_fraction:.0%} of {n:,} {_rows(s)}; there their gradient is "
                "almost zero, so they barely learn.", context,
                "Common causes: weights initialised too "
                "large, unscaled inputs, a learning rate that pushed pre-activations far out. "
                "Try: Xavier/Glorot init, standardize inputs, normalization layers, or ReLU-"
                "family activations."
            ),
        )
    ]


def _rule_constant(s: LayerStats, th: Thresholds, context: str = "diagnose") -> list[Finding]:
    seen = s.count > 1
    const = seen & (s.var <= th.constant_rtol * np.maximum(1.0, s.mean**2))
    if s.family == "relu":
        const &= s.frac_active > 0  # never-active units are reported as dead
    const &= ~_dead_gates(s, th)
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
            advice=_advice(
                f"{k} of {s.units} units in `{s.name}` output the same value on every input "
                f"(e.g. {_fmt(values[0])}); they carry no information about the input.", context,
                "Common causes: zero input weights, an input feature that is constant, a layer "
                "upstream that collapsed. Try: check the inputs' variance and this layer's "
                "weights; re-initialise."
            ),
        )
    ]


_UNBOUNDED = ("relu", "rectifier", "linear")


def _alike(layers: list[LayerStats]) -> list[LayerStats]:
    """The layers to compare across depth, like with like: a transformer's block outputs
    (its hidden states) when there are two or more; else the per-token layers when some
    are per-token (not a pooled head against token states); else all."""
    blocks = [s for s in layers if s.block]
    if len(blocks) >= 2:
        return blocks
    tokens = [s for s in layers if s.per_token]
    return tokens if tokens and len(tokens) < len(layers) else layers


def _rule_exploding_activations(
    stats: NetworkStats, th: Thresholds, context: str = "diagnose"
) -> list[Finding]:
    layers = [s for s in stats.values() if s.family in _UNBOUNDED and math.isfinite(s.scale)]
    if not layers:
        return []
    scales = {s.name: s.scale for s in layers}
    over = [s for s in layers if s.scale > th.activation_bound]
    depth = _alike(layers)
    growth = None
    if len(depth) >= 3 and depth[0].scale > 0:
        growth = depth[-1].scale / depth[0].scale
    grows = growth is not None and growth >= th.activation_growth
    if not over and not grows:
        return []
    per_layer = growth ** (1 / (len(depth) - 1)) if growth else None
    where = over[0] if over else depth[-1]
    what = (
        f"The activation scale (RMS) grows from {_fmt(depth[0].scale)} in `{depth[0].name}` "
        f"to {_fmt(depth[-1].scale)} in `{depth[-1].name}` (x{_fmt(per_layer)} per layer)"
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
            advice=_advice(
                what + ". Large activations make the loss and the gradients blow up.", context,
                "Common causes: weights initialised too large for the depth, no normalization, "
                "unscaled inputs. Try: He init for ReLU (Xavier for tanh), BatchNorm/"
                "LayerNorm between layers, standardize the inputs."
            ),
        )
    ]


def _rule_gradients(stats: NetworkStats, th: Thresholds, context: str = "diagnose") -> list[Finding]:
    """Per-element gradient RMS of the first against the last comparable layer (like with
    like: a transformer's block outputs; real tokens only where the layers are per-token)."""
    layers = _alike([s for s in stats.values() if s.grad_rms is not None])
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
            else _PRETRAINED[context] if context in _PRETRAINED
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
                advice=_advice(
                    f"Gradients grow toward the input: the gradient RMS at `{first.name}` is "
                    f"{_fmt(g0)}, {_fmt(ratio)}x larger than at `{last.name}` ({_fmt(g1)}); "
                    f"x{_fmt(per_layer)} per layer. Updates to the first layers will be far "
                    "too large.", context,
                    "Common causes: weights initialised too large for the depth, "
                    "no normalization. Try: He/Xavier init, gradient clipping, normalization "
                    "layers, a lower learning rate."
                ),
            )
        ]
    return []


def _history_losses(history: Any) -> list[float]:
    if history is None:
        return []
    losses = getattr(history, "train_loss", history)
    return [float(v) for v in losses]
