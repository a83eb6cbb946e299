"""Files for ``netxray diagnose --out`` and ``netxray explain``: a report, PNGs, and the numbers.

These draw results only (a ``HealthReport``, an ``Attribution``) beside the dataset they came
from; what runs the model lives in :mod:`netxray.analysis`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from netxray._io import write_text
from netxray.report import charts
from netxray.report.build import health_section
from netxray.report.html import write_report
from netxray.report.pngs import save_png

if TYPE_CHECKING:
    from netxray.analysis import TextAnalysis
    from netxray.attribution import Attribution
    from netxray.data import Dataset
    from netxray.health import HealthReport

__all__ = ["write_attribution_files", "write_health_files", "write_text_files"]


def write_health_files(health: HealthReport, dataset: Dataset, out: Path, *,
                       subtitle: str = "") -> Path:
    """``out/report.html`` with the Health section, and ``out/health.png``."""
    from netxray.plot.health import LayerActivityDisplay

    out.mkdir(parents=True, exist_ok=True)
    if health.stats is not None:
        save_png(LayerActivityDisplay.from_result(health).plot().figure_, out / "health.png")
    payload = {
        "title": f"netxray diagnose: {dataset.name}",
        "subtitle": subtitle,
        "meta": {"samples": len(dataset), "findings": len(health.findings)},
        "sections": [health_section(health)],
    }
    return write_report(payload, out / "report.html")


def _class_mean_abs(values: np.ndarray, dataset: Dataset) -> np.ndarray:
    """``(classes, features)`` mean |attribution| per true class; NaN for an absent class."""
    return np.stack([
        np.abs(values[dataset.y == k]).mean(0) if np.any(dataset.y == k)
        else np.full(values.shape[1], np.nan)
        for k in range(dataset.n_classes)
    ])


def _summary_csv(values: np.ndarray, dataset: Dataset) -> str:
    """Per feature: mean |attribution|, mean attribution, and mean |attribution| per class."""
    buf = io.StringIO()
    w = csv.writer(buf)
    classes = list(dataset.class_names)
    w.writerow(["feature", "mean_abs", "mean", *[f"mean_abs[{c}]" for c in classes]])
    per_class = _class_mean_abs(values, dataset)
    for j, name in enumerate(dataset.feature_names):
        w.writerow([name, f"{np.abs(values[:, j]).mean():.6g}", f"{values[:, j].mean():.6g}",
                    *[f"{pc[j]:.6g}" for pc in per_class]])
    return buf.getvalue()


def write_attribution_files(
    attr: Attribution, dataset: Dataset, *, target: int | str, out: Path
) -> list[Path]:
    """The attributions of every sample of ``dataset`` as NPZ (every value) and CSV
    (per-feature summary), PNGs and a report."""
    from netxray.plot.attribution import FeatureAttributionDisplay, ImageAttributionDisplay

    out.mkdir(parents=True, exist_ok=True)
    values = attr.values.detach().cpu().double().numpy().reshape(len(dataset), -1)
    written = [attr.save(out / "attributions.npz")]
    written.append(write_text(out / "attributions.csv", _summary_csv(values, dataset)))
    importance = np.abs(values).mean(0)
    names = list(dataset.feature_names)
    top = np.argsort(-importance)[:30]
    written.append(save_png(
        FeatureAttributionDisplay(importance[top], feature_names=[names[i] for i in top],
                                  signed=False, title=f"mean |{attr.method}|",
                                  xlabel="mean |attribution|").plot().figure_,
        out / "importance.png",
    ))
    written.append(save_png(
        FeatureAttributionDisplay(values[0], feature_names=names,
                                  title=f"{attr.method}, sample 0").plot().figure_,
        out / "sample0.png",
    ))
    chart_list = [
        charts.bars(f"Feature importance (mean |{attr.method}|)", [names[i] for i in top],
                    importance[top], signed=False,
                    description=f"Over all {len(dataset)} samples; top {len(top)} features."),
        charts.bars("Sample 0", names[:60], values[0, :60],
                    description="Signed: positive values push the explained output up."),
    ]
    if dataset.image_shape is not None:
        per_class = np.nan_to_num(_class_mean_abs(values, dataset)).reshape(
            -1, *dataset.image_shape
        )
        written.append(save_png(
            ImageAttributionDisplay(per_class, titles=list(dataset.class_names),
                                    signed=False).plot().figure_,
            out / "by_class.png",
        ))
        chart_list.append(charts.images("Mean |attribution| per class", per_class,
                                        labels=list(dataset.class_names), cmap="viridis"))
    if attr.delta is not None:
        delta = attr.delta.detach().abs().cpu().numpy()
        chart_list.append(charts.table(
            "Completeness", ["max |delta|", "median |delta|"],
            [[float(f"{delta.max():.3g}"), float(f"{np.median(delta):.3g}")]],
            description="sum(attribution) - (F(x) - F(baseline)) per sample: near 0 means "
            "the integral was computed accurately; raise n_steps if it is not.",
        ))
    payload = {
        "title": f"netxray explain: {attr.method} on {dataset.name}",
        "subtitle": f"target: {target}",
        "meta": {"samples": len(dataset), "method": attr.method},
        "sections": [{"id": "attribution", "title": "Attribution",
                      "description": "Which input features drive the model's outputs.",
                      "charts": chart_list}],
    }
    written.append(write_report(payload, out / "report.html"))
    return written


def _token_stats_csv(t: TextAnalysis) -> str:
    """Per token id and class: count, mean, std and mean |score| of its scores."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["token_id", "token", "class", "count", "mean", "std", "mean_abs"])
    tok = t.attribution.tokens
    assert tok is not None
    for c in range(tok.n_classes):
        n, mean, std, mabs = (a.numpy() for a in (tok.count(c), tok.mean(c), tok.std(c),
                                                   tok.mean_abs(c)))
        name = t.class_names[c] if c < len(t.class_names) else str(c)
        for i in np.nonzero(n)[0]:
            w.writerow([int(tok.token_ids[i]), t.token_names[i], name, int(n[i]),
                        f"{mean[i]:.6g}", "" if not np.isfinite(std[i]) else f"{std[i]:.6g}",
                        f"{mabs[i]:.6g}"])
    return buf.getvalue()


def write_text_files(
    t: TextAnalysis, token_rows: list[tuple[int, int, int, str, float]], out: Path
) -> list[Path]:
    """``token_scores.csv`` (every real token: sample, position, id, token, score),
    ``token_stats.csv``, the bundle ``text.npz`` and ``report.html`` with the Text section."""
    from netxray.report.text import write_text_analysis

    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["sample", "position", "token_id", "token", "score"])
    w.writerows([s, p, i, tok, f"{v:.6g}"] for s, p, i, tok, v in token_rows)
    return [
        write_text(out / "token_scores.csv", buf.getvalue()),
        write_text(out / "token_stats.csv", _token_stats_csv(t)),
        t.save(out / "text.npz"),
        write_text_analysis(t, out / "report.html"),
    ]
