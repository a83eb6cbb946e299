"""The text report's story cards say what the numbers say: the accuracy against always
answering the most common label, and the flip rate over the texts the swap reached."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from netxray.analysis import analyze_text
from netxray.report.text import counterfactual_charts, counterfactual_story
from netxray.swaps import CounterfactualResult

VOCAB = [f"w{i}" for i in range(30)]


class _Bag(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(len(VOCAB), 4)
        self.head = nn.Linear(4, 2)

    def forward(self, input_ids, attention_mask):
        m = attention_mask[..., None].float()
        return self.head((self.emb(input_ids) * m).sum(1) / m.sum(1))


def _cf(**kw) -> CounterfactualResult:
    base = dict(swaps={"w1": "w2", "w2": "w1"}, n_texts=10, n_with_term=6, n_without_term=4,
                n_flipped=1, flip_rate=0.25, flip_low=0.05, flip_high=0.7,
                mean_prob_change=-0.1, index=np.arange(4), pred=np.zeros(4, np.int64),
                pred_swapped=np.array([1, 0, 0, 0]), prob=np.full(4, 0.8),
                prob_swapped=np.array([0.3, 0.8, 0.8, 0.8]), originals=("a",) * 4,
                swapped=("b",) * 4)
    return CounterfactualResult(**{**base, **kw})


@pytest.fixture(scope="module")
def analysis():
    model = _Bag().eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 30, (40, 6), generator=g)
    am = torch.ones_like(ids)
    with torch.no_grad():
        pred = model(ids, am).argmax(1)
    return model, ids, am, pred


@pytest.mark.parametrize("agree", [0.0, 1.0])
def test_the_accuracy_card_compares_with_the_most_common_label(analysis, agree):
    model, ids, am, pred = analysis
    labels = pred if agree else 1 - pred  # accuracy 1 or 0, by construction
    t = analyze_text(model, {"input_ids": ids, "attention_mask": am, "labels": labels},
                     vocab=VOCAB, method="saliency", n_examples=2, counterfactual=_cf())
    assert t.accuracy == agree
    card = {i["kind"]: i for i in counterfactual_story(t)["items"]}["accuracy"]
    counts = np.bincount(labels.numpy(), minlength=2)  # the base rate, by hand
    base = counts.max() / counts.sum()
    assert f"scores {base:.1%}" in card["text"] and f"({counts.argmax()})" in card["text"]
    if agree:
        assert card["severity"] == "info" and card["text"].startswith("Accuracy above")
    else:
        assert card["severity"] == "warning"
        assert card["text"].startswith("Accuracy is no better than guessing: 0.0% of the 40")
    assert "looks fine" not in card["text"]


def test_the_swap_cards_count_only_the_texts_the_swap_reached(analysis):
    model, ids, am, pred = analysis
    t = analyze_text(model, {"input_ids": ids, "attention_mask": am, "labels": pred},
                     vocab=VOCAB, method="saliency", n_examples=2,
                     counterfactual=_cf(n_unchanged=2, unchanged_index=np.array([5, 7])))
    cf = t.counterfactual
    card = {i["kind"]: i for i in counterfactual_story(t)["items"]}["counterfactual"]
    assert f"25.0% of {cf.n_with_term - cf.n_unchanged} decisions flip" in card["text"]
    assert "2 text(s) with a swapped word were left out" in card["advice"]
    rows = dict(counterfactual_charts(t)[0]["rows"])
    assert rows["compared"] == 4 and rows["left out: the swap did not change the encoding"] == 2
    # every text with a word left out: nothing compared, and the card says why
    none = dataclasses.replace(cf, n_flipped=0, n_unchanged=6, flip_rate=float("nan"),
                               flip_low=float("nan"), flip_high=float("nan"))
    card = {i["kind"]: i for i in counterfactual_story(
        dataclasses.replace(t, counterfactual=none))["items"]}["counterfactual"]
    assert card["severity"] == "warning" and card["text"].startswith("No swap changed what")
