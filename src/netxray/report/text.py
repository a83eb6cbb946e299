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

__all__ = ["accuracy_card", "counterfactual_charts", "counterfactual_story", "text_payload", "text_section",
           "top_tokens", "write_text_analysis"]

#: bars per class in the top-token charts
TOP_TOKENS = 15
#: rows per class in the token table
TABLE_TOKENS = 40
#: tokens per class in the story and in ``netxray demo``'s summary
STORY_TOKENS = 10
#: a swapped word among this many top tokens of a class is called out in the story
CALL_OUT = 5
#: a flip rate from this up is called out (a warning; an error when the whole 95% CI is above)
FLIP_WARN = 0.05
#: rows of the flipped-texts table
FLIPPED_ROWS = 30


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


def top_tokens(t: TextAnalysis, k: int = STORY_TOKENS) -> dict[str, list[str]]:
    """Per class name, up to ``k`` token names, most important first: the highest mean score
    in that class's sequences, among tokens seen often enough (as the report's bars)."""
    tok = t.attribution.tokens
    if tok is None:
        raise ValueError("this TextAnalysis holds no token statistics (attribution.tokens)")
    out = {}
    for c in range(tok.n_classes):
        n = tok.count(c).numpy()
        if n.any():
            out[_class(t.class_names, c)] = [t.token_names[i] for i in
                                             tok.top(c, k, min_count=_min_count(n))]
    return out


def text_section(t: TextAnalysis) -> dict[str, Any]:
    """What the model relies on: the story when words were swapped, example sentences shaded
    by attribution, the top tokens per class, then the swaps' numbers and flipped texts."""
    tok = t.attribution.tokens
    if tok is None:
        raise ValueError("this TextAnalysis holds no token statistics (attribution.tokens)")
    chart_list: list[dict[str, Any]] = []
    if t.counterfactual is not None:
        chart_list.append(counterfactual_story(t))
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
    if t.counterfactual is not None:
        chart_list.extend(counterfactual_charts(t))
    return {
        "id": "text",
        "title": "What the model relies on",
        "description": f"Which tokens drive the predictions, over {t.attribution.n_samples} "
        f"sequences and {int(tok.count().sum())} real tokens"
        + (", and what changes when only the swapped words change." if t.counterfactual
           is not None else "."),
        "charts": chart_list,
    }


def _pairs(swaps: dict[str, str]) -> str:
    seen: list[str] = []
    for a, b in swaps.items():
        if f"{b.lower()} <-> {a}" not in seen:
            seen.append(f"{a} <-> {b.lower()}")
    return ", ".join(seen)


def counterfactual_story(t: TextAnalysis) -> dict[str, Any]:
    """Three cards from the results: the accuracy, the tokens the model uses (swap words
    among them called out), and how many decisions a swap flips."""
    cf = t.counterfactual
    assert cf is not None
    words = {w.lower() for w in cf.swaps}
    items: list[dict[str, Any]] = []
    if t.accuracy is not None:
        items.append(accuracy_card(t))
    tops = top_tokens(t)
    found = [(cls, i + 1, w) for cls, ws in tops.items() for i, w in enumerate(ws[:CALL_OUT])
             if w.lower() in words]
    listed = "; ".join(f"{cls}: {', '.join(ws[:5])}" for cls, ws in tops.items())
    if found:
        called = "; ".join(f'"{w}" is #{r} for {cls}' for cls, r, w in found)
        items.append({"severity": "warning", "kind": "reliance",
                      "text": f"What the model uses: the top evidence per class is {listed}. "
                      f"A swapped word is among it: {called}.",
                      "advice": "Check with the swaps below whether the word alone changes "
                      "decisions; if it should not matter, fix the labels or data it was "
                      "learned from."})
    else:
        items.append({"severity": "ok", "kind": "reliance",
                      "text": f"What the model uses: the top evidence per class is {listed}. "
                      f"No swapped word is among the top {CALL_OUT} of any class."})
    left = (f" {cf.n_unchanged} text(s) with a swapped word were left out: the swap did not "
            "change their encoding (the word was truncated away, or both words have one id)."
            if cf.n_unchanged else "")
    if cf.n_compared == 0:
        items.append({"severity": "warning" if cf.n_unchanged else "info",
                      "kind": "counterfactual",
                      "text": (f"No swap changed what the model sees ({_pairs(cf.swaps)}): "
                               f"nothing to compare.{left}" if cf.n_with_term else
                               f"No text held a swapped word ({_pairs(cf.swaps)}): nothing to "
                               "compare.")})
    else:
        high = cf.flip_rate >= FLIP_WARN
        items.append({
            "severity": "error" if cf.flip_low >= FLIP_WARN else "warning" if high else "ok",
            "kind": "counterfactual",
            "text": f"What changes when only the word changes ({_pairs(cf.swaps)}): "
            f"{cf.flip_rate:.1%} of {cf.n_compared} decisions flip (95% CI "
            f"{cf.flip_low:.1%}-{cf.flip_high:.1%}); the probability of the original "
            f"decision moves by {cf.mean_prob_change:+.3f} on average.",
            "advice": (f"Only the swapped word differs, so it alone changed {cf.n_flipped} "
                       "decisions: relabel or rebalance the training data (or drop the word) "
                       "and measure the flip rate again." if cf.n_flipped
                       else "Nothing: the swap changed no decision.")
            + f" ({cf.n_without_term} of {cf.n_texts} texts held no swapped word.){left}",
        })
    return charts.findings("The story in three numbers", items,
                           description="Accuracy, what the model relies on, and what a "
                           "one-word change does, each from the results below.")


def accuracy_card(t: TextAnalysis) -> dict[str, Any]:
    """The accuracy against always answering the most common label: a model no better than
    that has learned nothing the report can trust, whatever it relies on."""
    assert t.accuracy is not None
    n = t.attribution.n_samples
    counts = t.attribution.class_counts.numpy()
    if t.attribution.grouped_by != "label" or not counts.sum():
        return {"severity": "info", "kind": "accuracy",
                "text": f"Accuracy: {t.accuracy:.1%} of the {n} sequences are classified as "
                "labelled."}
    top = int(counts.argmax())
    base = float(counts[top] / counts.sum())
    said = (f"{t.accuracy:.1%} of the {n} sequences are classified as labelled; always "
            f"answering the most common label ({_class(t.class_names, top)}) scores {base:.1%}")
    if t.accuracy <= base:
        return {"severity": "warning", "kind": "accuracy",
                "text": f"Accuracy is no better than guessing: {said}.",
                "advice": "The model has not learned the task on this data: check that the "
                "labels and the class order match the model's outputs, then train further "
                "before reading what it relies on."}
    return {"severity": "info", "kind": "accuracy",
            "text": f"Accuracy above the base rate: {said}.",
            "advice": "Look at what it relies on (below): accuracy measures agreement with the "
            "labels, and labels that carry a bias teach it."}


def counterfactual_charts(t: TextAnalysis) -> list[dict[str, Any]]:
    """The swap's numbers as a table, and the texts whose decision flipped."""
    cf = t.counterfactual
    assert cf is not None
    rows: list[list[Any]] = [
        ["swaps (both ways)", _pairs(cf.swaps)],
        ["texts", cf.n_texts],
        ["with a swapped word", cf.n_with_term],
        ["without (counted, not run)", cf.n_without_term],
        ["left out: the swap did not change the encoding", cf.n_unchanged],
        ["compared", cf.n_compared],
        ["decisions flipped", cf.n_flipped],
        ["flip rate", _num(cf.flip_rate)],
        ["flip rate 95% CI (Wilson)", f"{cf.flip_low:.3f}-{cf.flip_high:.3f}"
         if np.isfinite(cf.flip_low) else "-"],
        ["mean change in the predicted probability", _num(cf.mean_prob_change)],
    ]
    out = [charts.table("Counterfactual swaps", ["quantity", "value"], rows,
                        description="Each text holding a swap word is run as written and "
                        "with every swap word replaced by its partner (whole words, any case). "
                        "A text that encodes the same after the swap (the word truncated away, "
                        "or both words one id) is left out: the model cannot see the change.")]
    names = t.class_names
    flips = cf.flipped_examples(FLIPPED_ROWS)
    if flips:
        out.append(charts.table(
            "Decisions that flipped", ["original", "swapped", "before", "after",
                                       "p before", "p after"],
            [[f["original"], f["swapped"], _class(names, f["pred"]),
              _class(names, f["pred_swapped"]), _num(f["prob"]), _num(f["prob_swapped"])]
             for f in flips],
            description=f"Up to {FLIPPED_ROWS} of the {cf.n_flipped} flipped texts, the "
            "largest drop first; p is the probability of the original decision.",
        ))
    return out


def _num(v: float) -> float | None:
    return float(f"{v:.4g}") if np.isfinite(v) else None


def text_payload(t: TextAnalysis) -> dict[str, Any]:
    """The report's payload for a text bundle: the Text section alone."""
    return {"title": t.title, "subtitle": t.subtitle, "meta": dict(t.meta),
            "sections": [text_section(t)]}


def write_text_analysis(t: TextAnalysis, path: str | os.PathLike[str]) -> Path:
    """Draw a text bundle as the HTML report at ``path``."""
    return write_report(text_payload(t), path)
