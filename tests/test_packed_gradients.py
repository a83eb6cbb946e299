"""Gradients of RNN layers given a PackedSequence: the gradient reaches the packed output's
``data``, never the padded copy netxray reads, so collect_stats and watch take it there and
match the gradient autograd gives that tensor, over real tokens only; record(detach=False),
which can only hand the padded copy, says so."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import netxray
from netxray._warnings import NetxrayWarning
from netxray.monitor import watch
from netxray.store import open_run

WIDTH = 6  # every batch padded to 6 positions; its longest sequence is shorter


class Tagger(nn.Module):
    """Embedding, an RNN over the packed batch, the mean of its real outputs, a classifier."""

    def __init__(self, cell: str, bidirectional: bool, batch_first: bool, enforce_sorted: bool
                 ) -> None:
        super().__init__()
        torch.manual_seed(0)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.emb = nn.Embedding(30, 5)
        self.rnn = rnn(5, 4, batch_first=batch_first, bidirectional=bidirectional)
        self.fc = nn.Linear(8 if bidirectional else 4, 3)
        self.batch_first, self.enforce_sorted = batch_first, enforce_sorted

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(1).cpu()
        x = self.emb(input_ids)
        packed = pack_padded_sequence(x if self.batch_first else x.transpose(0, 1), lengths,
                                      batch_first=self.batch_first,
                                      enforce_sorted=self.enforce_sorted)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
        pooled = out.sum(1) / lengths[:, None].to(out.dtype)
        return self.fc(torch.tanh(pooled))


CASES = {  # cell, bidirectional, batch_first, enforce_sorted
    "lstm": ("lstm", False, True, False),
    "gru-bidirectional": ("gru", True, True, False),
    "lstm-bidirectional-seq-first-sorted": ("lstm", True, False, True),
    "gru-seq-first": ("gru", False, False, False),
}


def _batches(sorted_lengths: bool) -> list[dict[str, torch.Tensor]]:
    """Two batches of three sentences of different lengths (descending within a batch when
    the model packs them with enforce_sorted=True), padded to WIDTH with id 0."""
    lengths = [[5, 4, 2], [3, 2, 1]] if sorted_lengths else [[2, 5, 4], [1, 3, 2]]
    g = torch.Generator().manual_seed(1)
    out = []
    for ls in lengths:
        am = (torch.arange(WIDTH)[None, :] < torch.tensor(ls)[:, None]).long()
        ids = torch.randint(1, 30, (len(ls), WIDTH), generator=g) * am
        out.append({"input_ids": ids, "attention_mask": am,
                    "labels": torch.randint(0, 3, (len(ls),), generator=g)})
    return out


def _model(case: str) -> Tagger:
    return Tagger(*CASES[case]).double().eval()


def _packed_grad(model: Tagger, batch: dict[str, torch.Tensor], reduction: str) -> torch.Tensor:
    """d loss / d (the RNN's packed output data), ``(real tokens, hidden)``: plain autograd."""
    kept = {}

    def keep(_m: nn.Module, _i: object, out: tuple) -> None:
        kept["d"] = out[0].data  # (the tensor the model goes on from)

    handle = model.rnn.register_forward_hook(keep)
    try:
        logits = model(batch["input_ids"], batch["attention_mask"])
    finally:
        handle.remove()
    loss = nn.functional.cross_entropy(logits, batch["labels"], reduction=reduction)
    (g,) = torch.autograd.grad(loss, kept["d"])
    assert g.shape[0] == int(batch["attention_mask"].sum())  # one row per real token
    return g


@pytest.mark.parametrize("case", list(CASES))
def test_collect_stats_takes_a_packed_rnn_output_gradient_at_its_data(case):
    model = _model(case)
    batches = _batches(sorted_lengths=CASES[case][3])
    data = {k: torch.cat([b[k] for b in batches]) for k in batches[0]}
    stats = netxray.collect_stats(model, data, layers=["rnn"], gradients=True, batch_size=3,
                                  loss_fn=nn.CrossEntropyLoss())
    # collect_stats's convention: each row's gradient of its batch's summed loss
    g = torch.cat([_packed_grad(model, b, "sum") for b in batches])
    s = stats["rnn"]
    assert s.per_token and s.shape == (g.shape[1],)
    norm = math.sqrt(float(g.square().sum()) / g.shape[0])
    assert s.grad_norm == pytest.approx(norm, rel=1e-6)
    assert s.grad_rms == pytest.approx(norm / math.sqrt(g.shape[1]), rel=1e-6)
    np.testing.assert_allclose(s.grad_abs_mean, g.abs().mean(0).numpy(), rtol=1e-6)


@pytest.mark.parametrize("case", ["lstm", "gru-bidirectional",
                                  "lstm-bidirectional-seq-first-sorted"])
@pytest.mark.parametrize("thread", [False, True], ids=["inline", "stats-thread"])
def test_watch_records_a_packed_rnn_output_gradient_at_its_data(tmp_path, case, thread):
    model = _model(case).train()
    batches = _batches(sorted_lengths=CASES[case][3])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = []
    with watch(model, tmp_path / "run", every=1, layers=["rnn"], alarms=lambda f, s: None,
               stats_thread=thread) as w:
        for b in batches:
            expected.append(_packed_grad(model, b, "mean").square().mean().sqrt().item())
            opt.zero_grad()
            loss = nn.functional.cross_entropy(
                model(b["input_ids"], attention_mask=b["attention_mask"]), b["labels"])
            loss.backward()
            opt.step()
            w.step(loss=loss)
    with open_run(tmp_path / "run") as run:
        rms = run.layer_stats("rnn").grad_rms
    np.testing.assert_allclose(rms, expected, rtol=1e-6)


def test_record_without_detach_says_a_packed_output_has_no_gradient_path():
    """record(detach=False) hands the padded copy of a packed output: no gradient reaches it,
    which autograd only tells as an unused tensor (or a None); the warning names the layer."""
    model = _model("lstm")
    batch = _batches(sorted_lengths=False)[0]
    with pytest.warns(NetxrayWarning, match=r"layer 'rnn' outputs a PackedSequence.*\.data"):
        with netxray.record(model, ["rnn", "fc"], detach=False) as rec:
            out = model(batch["input_ids"], batch["attention_mask"])
    g = torch.autograd.grad(out.sum(), rec["rnn"], allow_unused=True)[0]
    assert g is None  # (what the warning is about)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with netxray.record(model, ["rnn"]) as rec:  # a copy: no gradient expected
            model(batch["input_ids"], batch["attention_mask"])
