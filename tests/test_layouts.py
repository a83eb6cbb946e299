"""Where the batch and the tokens are in a layer's output: a text CNN's channel-first
``Conv1d`` outputs ``(batch, channels, seq)``, and the layers after an
``nn.LSTM(batch_first=False)`` output ``(seq, batch, ...)``. Each is read right (its real
tokens, against plain hooks and NumPy) or refused, by activations, collect_stats and watch."""

import numpy as np
import pytest
import torch
from torch import nn

import netxray
from watch_helpers import watched_step

SEQ = 8


class TextCNN(nn.Module):
    """Embedding (batch, seq, emb) -> transpose -> Conv1d (batch, channels, seq) -> ReLU ->
    masked mean over time -> Linear."""

    def __init__(self, channels, padding=1, act_first=False):
        super().__init__()
        torch.manual_seed(0)
        if act_first:  # declared before the conv: its layout cannot be told from the order
            self.act = nn.ReLU()
        self.emb = nn.Embedding(30, 6)
        self.conv = nn.Conv1d(6, channels, 3, padding=padding)
        if not act_first:
            self.act = nn.ReLU()
        self.head = nn.Linear(channels, 2)
        with torch.no_grad():
            self.emb.weight[0] = 40.0  # the padding id: huge outputs wherever it is counted

    def forward(self, input_ids, attention_mask):
        h = self.act(self.conv(self.emb(input_ids).transpose(1, 2)))
        m = attention_mask[:, None, : h.shape[2]].to(h.dtype)
        return self.head((h * m).sum(2) / m.sum(2))


def text_batches(seq=SEQ):
    """Two batches of 4 right-padded sequences (pad id 0), 37 real tokens."""
    g = torch.Generator().manual_seed(1)
    out = []
    for lengths in ([8, 3, 5, 1], [2, 6, 8, 4]):
        mask = (torch.arange(seq)[None, :] < torch.tensor(lengths)[:, None]).long()
        ids = torch.randint(1, 30, (4, seq), generator=g) * mask
        out.append({"input_ids": ids, "attention_mask": mask,
                    "labels": torch.randint(0, 2, (4,), generator=g)})
    return out


def hooked(model, names, batches, run=None):
    """Plain forward hooks, outputs cloned as each layer runs: per name, one tensor per batch."""
    mods = dict(model.named_modules())
    kept = {n: [] for n in names}
    handles = [mods[n].register_forward_hook(
        lambda _m, _i, out, n=n: kept[n].append((out[0] if isinstance(out, tuple) else out)
                                               .detach().clone())) for n in names]
    try:
        with torch.no_grad():
            for b in batches:
                (run or (lambda b: model(**{k: v for k, v in b.items() if k != "labels"})))(b)
    finally:
        for h in handles:
            h.remove()
    return kept


def cnn_tokens(model, batches, name):
    """The layer's real tokens (tokens, channels) as float64 NumPy, picked by hand from its
    (batch, channels, seq) outputs."""
    outs = hooked(model, [name], batches)[name]
    return np.concatenate([o.numpy().transpose(0, 2, 1)[b["attention_mask"].numpy() == 1]
                           for o, b in zip(outs, batches, strict=True)]).astype(np.float64)


@pytest.mark.parametrize("channels", [SEQ, 5])  # as many channels as tokens, and not
def test_a_text_cnn_reads_its_channel_first_layers_per_real_token(channels):
    model = TextCNN(channels).eval()
    batches = text_batches()
    for name in ("conv", "act"):
        ref = cnn_tokens(model, batches, name)
        assert ref.shape == (37, channels)
        a = netxray.activations(model, batches, layers=name)
        assert a.token_layers == (name,)
        np.testing.assert_allclose(a[name].numpy(), ref, rtol=1e-5, atol=1e-6)
        assert a.token_index[:, 0].tolist() == [0] * 8 + [1] * 3 + [2] * 5 + [3] + \
            [4] * 2 + [5] * 6 + [6] * 8 + [7] * 4
        pooled = netxray.activations(model, batches, layers=name, pool="mean")
        seq_of = a.token_index[:, 0].numpy()
        np.testing.assert_allclose(pooled[name].numpy(), np.stack(
            [ref[seq_of == i].mean(0) for i in range(8)]), rtol=1e-5, atol=1e-5)
        s = netxray.collect_stats(model, batches, name, bins=8)[name]
        assert s.per_token and s.units == channels and s.count.tolist() == [37] * channels
        np.testing.assert_allclose(s.mean, ref.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s.var, ref.var(0), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(s.max, ref.max(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(s.frac_active, (ref > 0).mean(0))


def test_a_text_cnn_gradient_statistics_cover_real_tokens_only():
    model = TextCNN(SEQ).eval()
    batches = text_batches()
    sq, absum, rows = 0.0, 0.0, 0
    for b in batches:  # reference: autograd on the hooked output, real tokens by hand
        kept = []
        h = model.act.register_forward_hook(lambda _m, _i, out, kept=kept: kept.append(out))
        try:
            logits = model(b["input_ids"], b["attention_mask"])
        finally:
            h.remove()
        loss = nn.functional.cross_entropy(logits, b["labels"], reduction="sum")
        (g,) = torch.autograd.grad(loss, kept[0])
        real = g.transpose(1, 2)[b["attention_mask"].bool()].double().numpy()
        sq, absum, rows = sq + (real ** 2).sum(), absum + np.abs(real).sum(0), rows + len(real)
    s = netxray.collect_stats(model, batches, "act", gradients=True)["act"]
    assert s.grad_norm == pytest.approx(np.sqrt(sq / rows), rel=1e-5)
    np.testing.assert_allclose(s.grad_abs_mean, absum / rows, rtol=1e-5, atol=1e-9)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("channels", [SEQ, 5])
def test_a_watched_text_cnn_counts_real_tokens_only(tmp_path, channels):
    model = TextCNN(channels).train()
    b = text_batches()[0]
    ref = cnn_tokens(model, [b], "act")
    with netxray.watch(model, tmp_path / "run", every=1, layers=["act"], bins=0,
                       alarms=lambda f, s: None) as w:
        watched_step(model, w, {k: v for k, v in b.items() if k != "labels"}, b["labels"])
    with netxray.open_run(tmp_path / "run") as run:
        s = run.layer_stats("act")
        np.testing.assert_allclose(s.mean[0], ref.mean(), rtol=1e-5)
        np.testing.assert_allclose(s.max[0], ref.max(), rtol=1e-5)
        assert run.layers["act"].units == channels


def test_what_a_text_cnn_cannot_show_is_refused():
    batches = text_batches()
    shorter = TextCNN(5, padding=0).eval()  # (batch, 5, seq - 2): the mask no longer fits
    for fn in (netxray.activations, netxray.collect_stats):
        with pytest.raises(ValueError, match="6 positions where the attention mask has 8 "
                                             "tokens.*padding='same'"):
            fn(shorter, batches, layers="conv")
    # the whole sequence counted, padding included, when asked for
    s = netxray.collect_stats(shorter, batches, "conv", mask=None)["conv"]
    assert not s.per_token and s.count.tolist() == [8 * 6] * 5
    # a ReLU declared before the conv: features last by declaration order, but its output
    # fits (batch, channels, seq) too (or only)
    for channels, match in ((SEQ, "fits both"), (5, "does not fit the layout guessed")):
        model = TextCNN(channels, act_first=True).eval()
        for fn in (netxray.activations, netxray.collect_stats):
            with pytest.raises(ValueError, match=match):
                fn(model, batches, layers="act")
    assert all(not m._forward_hooks for m in model.modules())


# ------------------------------------------------------ sequence-first LSTM, then a Linear


class SeqFirstTagger(nn.Module):
    """nn.LSTM(batch_first=False) and a Linear + Tanh on its (seq, batch, hidden) output."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lstm = nn.LSTM(3, 5)
        self.proj = nn.Linear(5, 4)
        self.act = nn.Tanh()
        self.head = nn.Linear(4, 2)

    def forward(self, x, attention_mask=None):  # x: (batch, seq, 3)
        h, _ = self.lstm(x.transpose(0, 1))
        return self.head(self.act(self.proj(h))[-1])


def lstm_batches(batch, seq=6):
    g = torch.Generator().manual_seed(2)
    lengths = torch.tensor([seq, 2, 4, 1, 5, 3][:batch])
    mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
    x = torch.randn(batch, seq, 3, generator=g)
    x[mask == 0] = 30.0  # padding
    return [{"x": x, "attention_mask": mask, "labels": torch.randint(0, 2, (batch,), generator=g)}]


def lstm_tokens(model, batches, name):
    outs = hooked(model, [name], batches, run=lambda b: model(b["x"]))[name]
    return [o.transpose(0, 1) for o in outs]  # (batch, seq, units), by hand


def test_layers_after_a_sequence_first_lstm_are_read_batch_first():
    model = SeqFirstTagger().eval()
    batches = lstm_batches(4)  # 4 sequences of 6 steps
    ref = lstm_tokens(model, batches, "act")[0]
    mask = batches[0]["attention_mask"].bool()
    real = ref[mask].double().numpy()
    a = netxray.activations(model, [{"x": b["x"]} for b in batches], layers=["proj", "act"])
    assert a["act"].shape == (4, 6, 4)
    torch.testing.assert_close(a["act"], ref)
    t = netxray.activations(model, batches, layers="act")
    np.testing.assert_allclose(t["act"].numpy(), real, rtol=1e-6)
    s = netxray.collect_stats(model, batches, "act", gradients=True)["act"]
    assert s.per_token and s.count.tolist() == [mask.sum().item()] * 4
    np.testing.assert_allclose(s.mean, real.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(s.max, real.max(0), rtol=1e-5, atol=1e-7)
    # without a mask: one row per sample, (seq, units) each
    plain = netxray.collect_stats(model, [{"x": b["x"]} for b in batches], "act")["act"]
    assert plain.shape == (6, 4) and plain.count.tolist() == [24] * 4


def test_a_shape_that_fits_both_layouts_after_a_sequence_first_lstm_is_refused(tmp_path):
    model = SeqFirstTagger().eval()
    batches = lstm_batches(6)  # 6 sequences of 6 steps: (seq, batch) or (batch, seq)?
    with pytest.raises(ValueError, match="cannot tell whether it is \\(batch, seq, \\.\\.\\.\\) "
                                         "or \\(seq, batch.*batch_first=True"):
        netxray.activations(model, [{"x": b["x"]} for b in batches], layers="proj")
    with pytest.raises(ValueError, match="lstm \\(LSTM, batch_first=False\\)"):
        netxray.collect_stats(model, batches, "act")  # a mask to apply: refused
    # no mask: the statistics over every position do not depend on the order
    ref = lstm_tokens(model, batches, "act")[0].reshape(-1, 4).double().numpy()
    s = netxray.collect_stats(model, [{"x": b["x"]} for b in batches], "act")["act"]
    np.testing.assert_allclose(s.mean, ref.mean(0), rtol=1e-5, atol=1e-7)
    model.train()
    b = batches[0]
    with pytest.raises(ValueError, match="cannot tell whether"):
        with netxray.watch(model, tmp_path / "run", every=1, layers=["act"]) as w:
            watched_step(model, w, {"x": b["x"], "attention_mask": b["attention_mask"]},
                         b["labels"])
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_watch_reads_the_layers_after_a_sequence_first_lstm_per_real_token(tmp_path):
    model = SeqFirstTagger().train()
    b = lstm_batches(4)[0]
    ref = lstm_tokens(model, [b], "act")[0][b["attention_mask"].bool()].double().numpy()
    with netxray.watch(model, tmp_path / "run", every=1, layers=["act"], bins=0,
                       alarms=lambda f, s: None) as w:
        watched_step(model, w, {"x": b["x"], "attention_mask": b["attention_mask"]},
                     b["labels"])
    with netxray.open_run(tmp_path / "run") as run:
        s = run.layer_stats("act")
        np.testing.assert_allclose(s.mean[0], ref.mean(), rtol=1e-5)
        np.testing.assert_allclose(s.max[0], ref.max(), rtol=1e-5)
        assert run.layers["act"].units == 4


def test_an_lstm_after_a_conv_has_its_hidden_units_last():
    """Units are the features of recurrent and attention modules wherever they are declared
    (after a Conv1d they took its channel dim, and a unit was a time step)."""

    class ConvLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv1d(3, 4, 3, padding=1)
            self.lstm = nn.LSTM(4, 5, batch_first=True)
            self.head = nn.Linear(5, 2)

        def forward(self, x):  # (batch, 3, seq)
            return self.head(self.lstm(self.conv(x).transpose(1, 2))[0][:, -1])

    model = ConvLSTM().eval()
    x = torch.randn(6, 3, 7, generator=torch.Generator().manual_seed(5))
    ref = hooked(model, ["lstm"], [x], run=model)["lstm"][0].reshape(-1, 5).double().numpy()
    s = netxray.collect_stats(model, x, "lstm")["lstm"]
    assert s.units == 5 and s.count.tolist() == [42] * 5
    np.testing.assert_allclose(s.mean, ref.mean(0), rtol=1e-5, atol=1e-7)
