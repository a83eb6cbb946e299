"""The report's Text section, drawn from a :class:`netxray.analysis.TextAnalysis`: example
sentences with each token shaded by its attribution, and the tokens that push each class up
over the whole dataset, with how often each was seen (a token seen twice says little).

Nothing here runs a model; the bundle may come fresh from :func:`netxray.analysis.analyze_text`
or from ``TextAnalysis.load(path)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netxray.report import charts
from netxray.report.html import write_report

if TYPE_CHECKING:
    from netxray.analysis import TextAnalysis

__all__ = ["text_payload", "text_section", "write_text_analysis"]

#: bars per class in the top-token charts
TOP_TOKENS = 15
#: rows per class in the token table
TABLE_TOKENS = 40


def _class(names: tuple[str, ...], c: int) -> str:
    return names[c] if 0 <= c < len(names) else "?"


def _example_labels(t: TextAnalysis) -> list[str]:
    out = []
    for i in range(len(t.examples)):
        parts = [f"#{i}"]
        if t.example_labels[i] >= 0:
            parts.append(f"label {_class(t.class_names, int(t.example_labels[i]))}")
        parts.append(f"predicted {_class(t.class_names, int(t.example_preds[i]))}")
        if t.example_targets[i] >= 0:
            parts.append(f"explaining {_class(t.class_names, int(t.example_targets[i]))}")
        if np.isfinite(t.example_delta[i]):
            parts.append(f"delta {t.example_delta[i]:.2g}")
        out.append(" · ".join(parts))
    return out


def _min_count(counts: np.ndarray) -> int:
    """Tokens seen fewer times are left out of the bars: 3 where enough tokens reach it."""
    for m in (3, 2):
        if (counts >= m).sum() >= 5:
            return m
    return 1


def text_section(t: TextAnalysis) -> dict[str, Any]:
    """Example sentences shaded by attribution, then the top tokens per class."""
    tok = t.attribution.tokens
    if tok is None:
        raise ValueError("this TextAnalysis holds no token statistics (attribution.tokens)")
    chart_list: list[dict[str, Any]] = []
    if t.examples:
        scores = [t.example_scores[i, : len(toks)] for i, toks in enumerate(t.examples)]
        chart_list.append(charts.tokens(
            "Example sentences", [list(e) for e in t.examples], scores,
            row_labels=_example_labels(t),
            description=f"{t.attribution.method} per token (summed over the embedding): blue "
            "tokens push the explained class up, orange ones push it down; each sentence on "
            "its own scale. Padding is left out.",
        ))
    grouped = "true label" if tok.grouped_by == "label" else "predicted class"
    rows = []
    for c in range(tok.n_classes):
        n = tok.count(c).numpy()
        if not n.any():
            continue
        m = _min_count(n)
        top = tok.top(c, TOP_TOKENS, min_count=m)
        mean = tok.mean(c).numpy()
        chart_list.append(charts.bars(
            f"Top tokens: {_class(t.class_names, c)}",
            [f"{t.token_names[i]} (n={int(n[i])})" for i in top], mean[top],
            xlabel="mean score",
            description=f"Mean score of each token in sequences whose {grouped} is "
            f"{_class(t.class_names, c)}, among tokens seen at least {m} time(s).",
        ))
        std, mabs = tok.std(c).numpy(), tok.mean_abs(c).numpy()
        for i in tok.top(c, TABLE_TOKENS):
            rows.append([_class(t.class_names, c), t.token_names[i], int(tok.token_ids[i]),
                         int(n[i]), _num(mean[i]), _num(std[i]), _num(mabs[i])])
    chart_list.append(charts.table(
        "Tokens per class", ["class", "token", "id", "count", "mean", "std", "mean |score|"],
        rows, description=f"Up to {TABLE_TOKENS} tokens per class ({grouped}), highest mean "
        "score first; std needs two occurrences. Click a header to sort.",
    ))
    return {
        "id": "text",
        "title": "Text",
        "description": f"Which tokens drive the predictions, over {t.attribution.n_samples} "
        f"sequences and {int(tok.count().sum())} real tokens.",
        "charts": chart_list,
    }


def _num(v: float) -> float | None:
    return float(f"{v:.4g}") if np.isfinite(v) else None


def text_payload(t: TextAnalysis) -> dict[str, Any]:
    """The report's payload for a text bundle: the Text section alone."""
    return {"title": t.title, "subtitle": t.subtitle, "meta": dict(t.meta),
            "sections": [text_section(t)]}


def write_text_analysis(t: TextAnalysis, path: str | os.PathLike[str]) -> Path:
    """Draw a text bundle as the HTML report at ``path``."""
    return write_report(text_payload(t), path)
