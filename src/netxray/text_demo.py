"""``netxray demo --preset biased_resumes`` (or ``fair_resumes``): train a text preset, look
inside it, and write what it relies on.

:func:`run` trains the preset (:mod:`netxray.resumes`), attributes its held-out resumes
token by token and swaps the gendered word in each (:func:`netxray.counterfactual`);
:func:`summary` gives the numbers ``summary.json`` holds, :func:`lines` what the command
prints, and :func:`write_outputs` the report, the results bundle and the summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from netxray.analysis import TextAnalysis
from netxray.resumes import CLASS_NAMES, TextPresetRun

#: integration steps of the token attributions (the preset's model is linear in its tokens'
#: embeddings, so a few steps already meet the completeness check)
N_STEPS = 16


@dataclass(frozen=True)
class TextDemo:
    """A trained text preset and what was found inside it: ``analysis`` (token attributions
    over the held-out resumes, with the counterfactual swaps), ``rule_accuracy`` (agreement
    with the skills-and-experience rule, whatever the labels say) and ``seconds`` (training)."""

    preset: TextPresetRun
    description: str
    analysis: TextAnalysis
    rule_accuracy: float
    seconds: float


def run(name: str, seed: int = 0) -> TextDemo:
    """Train the text preset ``name`` and analyse its held-out data (seconds on a CPU)."""
    from netxray import resumes
    from netxray.analysis import analyze_text
    from netxray.swaps import counterfactual

    preset = resumes.get(name)
    start = time.perf_counter()
    pr = preset.run(seed)
    seconds = time.perf_counter() - start
    cf = counterfactual(pr.model, list(pr.test_texts), pr.swaps, tokenizer=pr.tokenizer,
                        class_names=CLASS_NAMES)
    t = analyze_text(
        pr.model, pr.test, target="label", n_steps=N_STEPS, n_examples=8, counterfactual=cf,
        title=f"netxray demo: {name}", subtitle=preset.description,
    )
    b = pr.test.batches()
    with torch.no_grad():
        pred = pr.model(b["input_ids"], b["attention_mask"]).argmax(1).numpy()
    rule = float((pred == pr.test_merit).mean())
    meta = {"preset": name, "data": f"{len(pr.train)} train, {len(pr.test)} test resumes",
            "model": "BagClassifier (token embeddings summed, then linear)",
            "test accuracy": f"{t.accuracy:.3f}", "accuracy vs the rule": f"{rule:.3f}",
            **t.meta}
    return TextDemo(preset=pr, description=preset.description,
                    analysis=replace(t, meta=meta), rule_accuracy=rule, seconds=seconds)


def summary(d: TextDemo) -> dict[str, Any]:
    """What ``summary.json`` holds: ``accuracy`` (held-out, against the labels),
    ``top_tokens`` (per class, most important first, from the attributions), ``flip_rate``
    and the counts and interval behind it."""
    from netxray.report.text import top_tokens

    t = d.analysis
    cf = t.counterfactual
    assert cf is not None
    return {
        "preset": d.preset.name,
        "accuracy": t.accuracy,
        "rule_accuracy": d.rule_accuracy,
        "top_tokens": top_tokens(t),
        "top_tokens_by": f"mean {t.attribution.method} score in the class's sequences "
                         "(explaining the true label), tokens seen often enough",
        "flip_rate": cf.flip_rate,
        "flip_rate_ci95": [cf.flip_low, cf.flip_high],
        "n_flipped": cf.n_flipped,
        "n_with_term": cf.n_with_term,
        "n_without_term": cf.n_without_term,
        "n_unchanged": cf.n_unchanged,
        "mean_prob_change": cf.mean_prob_change,
        "swaps": dict(cf.swaps),
    }


def lines(d: TextDemo) -> str:
    """What the command prints: accuracy, the top tokens per class and the flip rate."""
    s = summary(d)
    cf = d.analysis.counterfactual
    assert cf is not None
    out = [
        f"{d.preset.name}: {len(d.preset.train)} training and {len(d.preset.test)} held-out "
        f"resumes; model trained in {d.seconds:.1f} s",
        f"test accuracy {s['accuracy']:.3f} (against the labels); "
        f"{s['rule_accuracy']:.3f} against the skills-and-experience rule",
        "",
        "Top tokens per class (mean integrated-gradients score, most important first):",
    ]
    out += [f"  {cls:8s} {', '.join(ws)}" for cls, ws in s["top_tokens"].items()]
    out += ["", f"Counterfactual swap ({', '.join(f'{a} -> {b}' for a, b in cf.swaps.items())}):",
            f"  {cf.summary()}"]
    for f in cf.flipped_examples(3):
        out.append(f"  flipped {CLASS_NAMES[f['pred']]} -> {CLASS_NAMES[f['pred_swapped']]}: "
                   f"{f['original']!r} -> {f['swapped']!r}")
    return "\n".join(out)


def write_outputs(d: TextDemo, out: Path) -> Path:
    """Write ``out/report.html`` (the "What the model relies on" section), ``out/text.npz``
    (the :class:`TextAnalysis` it draws) and ``out/summary.json``; return the report's path."""
    from netxray import _io
    from netxray._results import to_plain
    from netxray.report.text import write_text_analysis

    out.mkdir(parents=True, exist_ok=True)
    d.analysis.save(out / "text.npz")
    _io.write_json(out / "summary.json", to_plain(summary(d)))  # NaN -> null
    return write_text_analysis(d.analysis, out / "report.html")
