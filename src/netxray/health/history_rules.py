"""Rules over what training left behind: the loss history (rising, not finite) and the weights
(update-to-weight ratios, spectral norms). The per-layer activation rules are in ``rules.py``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from netxray.health.findings import Finding, Thresholds, _fmt

if TYPE_CHECKING:
    from netxray.weights import WeightHealth
from netxray.health.rules import _history_losses


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


def weight_findings(
    health: WeightHealth, *, steps: int | None = None, thresholds: Thresholds | None = None
) -> list[Finding]:
    """Findings from weight health: updates too large per step (needs ``steps``)."""
    th = thresholds or Thresholds()
    if steps is None or steps < 1:
        return []
    findings: list[Finding] = []
    big: dict[str, Any] = {}
    for name, lw in health.layers.items():
        if lw.update_ratio is None or not math.isfinite(lw.update_ratio):
            continue
        per_step = lw.update_ratio / steps
        if per_step > th.update_ratio:
            big[name] = per_step
    if big:
        worst = max(big, key=big.__getitem__)
        findings.append(
            Finding(
                kind="large_updates",
                severity="warning",
                layer=worst.rsplit(".", 1)[0],
                units=(),
                evidence={"per_step_ratio": big, "steps": steps, "threshold": th.update_ratio},
                advice=(
                    f"Weights change by {big[worst]:.1e} of their norm per step in `{worst}` "
                    f"(above {th.update_ratio:.0e}; about 1e-3 is typical): the learning rate "
                    "is probably too high, so training is noisy or unstable. Try: a lower "
                    "learning rate, or warm-up."
                ),
            )
        )
    return findings
