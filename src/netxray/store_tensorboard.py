"""Export a run store to TensorBoard event files, so a run sits next to the others there.

>>> netxray.export_tensorboard("runs/exp1", "tb/exp1")   # then: tensorboard --logdir tb

Written with TensorBoard's own writer (``torch.utils.tensorboard.SummaryWriter``), at each
step's wall time:

- scalars ``train/loss``, ``metrics/<name>``; per layer ``layers/<layer>/<stat>`` for the
  activity (share > 0), mean, RMS scale, gradient RMS, saturation and dead units; per
  parameter ``params/<name>/<stat>`` for the weight and gradient norms and the update ratio.
  A NaN or Inf that was recorded (a diverged loss, a NaN gradient norm) is written as it is,
  so the run does not seem to stop where it diverged; values that were not recorded (a step
  without a loss, a layer without a gradient; see ``Series.recorded``) are left out.
- histograms ``histograms/<layer>``: the layer histogram stored in the run, on its fixed
  edges. The counts below the lowest edge form a first bucket ending at that edge; the
  counts at or above the highest edge a last one ending at the layer's max.
- text ``findings``: each alarm event, at its step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from netxray.store import Run, open_run

#: LayerSeries field -> scalar tag suffix
LAYER_SCALARS = {"frac_active": "activity", "mean": "mean", "scale": "scale",
                 "grad_rms": "grad_rms", "frac_saturated": "saturation", "dead": "dead_units"}
#: ParamSeries field -> scalar tag suffix
PARAM_SCALARS = {"weight_norm": "weight_norm", "grad_norm": "grad_norm",
                 "update_ratio": "update_ratio"}


def _writer(out_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ImportError("export_tensorboard needs the `tensorboard` package: "
                          f"pip install 'netxray[tensorboard]' ({e})") from e
    return SummaryWriter(log_dir=str(out_dir))


def hist_buckets(hist: np.ndarray, edges: np.ndarray, hi_value: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """TensorBoard bucket right-limits and counts for a stored ``(bins + 2,)`` histogram
    (below, between, at-or-above ``edges``); ``hi_value``: the largest value seen."""
    top = max(float(hi_value), float(np.nextafter(edges[-1], np.inf)))
    limits = np.concatenate([edges, [top]])
    return limits, np.asarray(hist, dtype=np.float64)


def export_tensorboard(run: Run | str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                       histograms: bool = True) -> Path:
    """Write ``run`` (a :class:`Run` or its path) as TensorBoard event files under ``out_dir``;
    return ``out_dir``. ``histograms=False``: scalars and findings only."""
    own = not isinstance(run, Run)
    r = open_run(run) if own else run
    out = Path(out_dir)
    try:
        steps = r.steps
        wall = dict(zip(steps.step.tolist(), steps.time.tolist(), strict=True))
        w = _writer(out)
        try:
            def scalar(tag: str, step_arr: np.ndarray, values: np.ndarray,
                       recorded: np.ndarray) -> None:
                for s, v, keep in zip(step_arr.tolist(),
                                      np.asarray(values, dtype=np.float64).tolist(),
                                      recorded.tolist(), strict=True):
                    if keep:
                        w.add_scalar(tag, v, global_step=s, walltime=wall.get(s))

            scalar("train/loss", steps.step, steps.loss, steps.loss_recorded)
            for name, values in steps.metrics.items():
                scalar(f"metrics/{name}", steps.step, values, steps.metrics_recorded[name])
            for layer in r.layers:
                ls = r.layer_stats(layer)
                for field, suffix in LAYER_SCALARS.items():
                    scalar(f"layers/{layer}/{suffix}", ls.step, getattr(ls, field),
                           ls.recorded(field))
                if not histograms or ls.hist.size == 0:
                    continue
                for i, s in enumerate(ls.step.tolist()):
                    counts = ls.hist[i]
                    num = float(counts.sum())
                    if num == 0 or np.isnan(ls.min[i]):
                        continue
                    limits, buckets = hist_buckets(counts, ls.hist_edges, ls.max[i])
                    w.add_histogram_raw(
                        f"histograms/{layer}", min=float(ls.min[i]), max=float(ls.max[i]),
                        num=num, sum=float(ls.mean[i]) * num,
                        sum_squares=float(ls.scale[i]) ** 2 * num,
                        bucket_limits=limits.tolist(), bucket_counts=buckets.tolist(),
                        global_step=s, walltime=wall.get(s))
            for pname in r.params:
                ps = r.param_stats(pname)
                for field, suffix in PARAM_SCALARS.items():
                    scalar(f"params/{pname}/{suffix}", ps.step, getattr(ps, field),
                           ps.recorded(field))
            for ev in r.findings:
                w.add_text("findings", str(ev), global_step=ev.step, walltime=wall.get(ev.step))
        finally:
            w.close()
    finally:
        if own:
            r.close()
    return out
