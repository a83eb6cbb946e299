"""nn.TransformerEncoder given src_key_padding_mask (True: padding) and no attention mask:
padding is left out of statistics and gradients whether or not PyTorch's nested-tensor fast
path ran (it does not with gradients on, with mask=, with left padding or sequence-first)."""

import numpy as np
import pytest
import torch
from torch import nn

import netxray

LAYER = "enc.layers.0.linear1"


class Classifier(nn.Module):
    def __init__(self, batch_first=True, layers=1):
        super().__init__()
        self.batch_first = batch_first
        self.proj = nn.Linear(16, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=batch_first)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=batch_first)
        self.head = nn.Linear(16, 3)

    def forward(self, x, src_key_padding_mask):
        h = self.proj(x)
        if not self.batch_first:
            h = h.transpose(0, 1)
        h = self.enc(h, src_key_padding_mask=src_key_padding_mask)
        if not self.batch_first:
            h = h.transpose(0, 1)
        return self.head(h[:, 0])


def model(**kw):
    torch.manual_seed(0)
    return Classifier(**kw).eval()


def data(left=False, seq=6):
    """Two batches, 27 real tokens in 48 positions; padding holds large values, so any of
    it counted would show in the means."""
    g = torch.Generator().manual_seed(1)
    out = []
    for lengths in ([6, 3, 3, 1], [5, 2, 6, 1]):
        pad = torch.ones(4, seq, dtype=torch.bool)
        for i, n in enumerate(lengths):
            if left:
                pad[i, seq - n:] = False
            else:
                pad[i, :n] = False
        x = torch.randn(4, seq, 16, generator=g).masked_fill(pad[..., None], 50.0)
        out.append({"x": x, "src_key_padding_mask": pad,
                    "labels": torch.randint(0, 3, (4,), generator=g)})
    return out


def reference(m, batches, name=LAYER):
    """Plain forward hooks, gradients on (PyTorch's slow path: a regular padded tensor), the
    real tokens picked by hand: outputs (tokens, units) and each row's gradient of the
    batch's summed cross-entropy, as float64 numpy."""
    module = dict(m.named_modules())[name]
    rows, grads = [], []
    for b in batches:
        kept = []
        h = module.register_forward_hook(lambda _m, _i, out, kept=kept: kept.append(out))
        try:
            with torch.enable_grad():
                logits = m(b["x"], b["src_key_padding_mask"])
                loss = nn.functional.cross_entropy(logits, b["labels"], reduction="sum")
                (g,) = torch.autograd.grad(loss, kept[0])
        finally:
            h.remove()
        out = kept[0].detach()
        if not m.batch_first:
            out, g = out.transpose(0, 1), g.transpose(0, 1)
        real = ~b["src_key_padding_mask"]
        rows.append(out[real].double().numpy())
        grads.append(g[real].double().numpy())
    return np.concatenate(rows), np.concatenate(grads)


@pytest.mark.parametrize("how", ["nested", "gradients", "left", "seq_first", "two_layers"])
def test_padding_is_left_out_with_or_without_gradients(how):
    m = model(batch_first=how != "seq_first", layers=2 if how == "two_layers" else 1)
    d = data(left=how == "left")
    ref, gref = reference(m, d)
    assert ref.shape[0] == 27
    grads = how not in ("nested", "left")  # left padding: no nested tensors either way
    s = netxray.collect_stats(m, d, LAYER, gradients=grads)[LAYER]
    assert s.per_token and s.count.tolist() == [27] * 32
    np.testing.assert_allclose(s.mean, ref.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(s.var, ref.var(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(s.max, ref.max(0), rtol=1e-4, atol=1e-5)
    if grads:
        norm = np.sqrt((gref ** 2).sum() / gref.shape[0])
        assert s.grad_norm == pytest.approx(norm, rel=1e-4)
        np.testing.assert_allclose(s.grad_abs_mean, np.abs(gref).mean(0), rtol=1e-4, atol=1e-7)
    a = netxray.activations(m, d, LAYER)  # the same real-token rows, in data order
    np.testing.assert_allclose(a[LAYER].double().numpy(), ref, rtol=1e-4, atol=1e-5)
    report = netxray.diagnose(m, d, LAYER)
    assert report.stats[LAYER].count.tolist() == [27] * 32
    np.testing.assert_allclose(report.stats[LAYER].mean, ref.mean(0), rtol=1e-4, atol=1e-5)
    assert all(not mod._forward_pre_hooks and not mod._forward_hooks for mod in m.modules())
    assert all(p.grad is None for p in m.parameters()) and not m.training


def test_float_padding_masks_and_an_agreeing_attention_mask_give_the_same_counts():
    m = model()
    d = data()
    ref, _ = reference(m, d)
    as_float = [{**b, "src_key_padding_mask": torch.zeros(4, 6).masked_fill(
        b["src_key_padding_mask"], -1e9)} for b in d]  # (-inf is refused as an input)
    for batches, kw in ((as_float, {}), (d, {"mask": lambda b: ~b["src_key_padding_mask"]})):
        s = netxray.collect_stats(m, batches, LAYER, gradients=True, **kw)[LAYER]
        assert s.count.tolist() == [27] * 32
        np.testing.assert_allclose(s.mean, ref.mean(0), rtol=1e-4, atol=1e-5)


def test_what_cannot_be_told_apart_is_refused_not_counted():
    m = model()
    d = data()
    with pytest.raises(ValueError, match="disagree on which tokens are real.*~padding_mask"):
        netxray.collect_stats(m, d, LAYER, gradients=True,
                              mask=lambda b: b["src_key_padding_mask"])  # inverted: wrong
    # the input projection runs before the encoder shows where the padding is
    with pytest.raises(ValueError, match="layer 'proj' outputs padded sequences.*mask="):
        netxray.collect_stats(m, d, ["proj", LAYER], gradients=True)
    soft = [{**b, "src_key_padding_mask": torch.full((4, 6), -0.5)} for b in d]
    with pytest.raises(ValueError, match="values other than 0 and -inf"):
        netxray.collect_stats(m, soft, LAYER, gradients=True)
    assert all(not mod._forward_pre_hooks and not mod._forward_hooks for mod in m.modules())
    # with the mask told, the projection's padding is left out too
    s = netxray.collect_stats(m, d, ["proj", LAYER], gradients=True,
                              mask=lambda b: ~b["src_key_padding_mask"])
    assert s["proj"].count.tolist() == [27] * 16


@pytest.mark.parametrize("batch_first", [True, False])
def test_a_training_watch_leaves_the_encoders_padding_out(tmp_path, batch_first):
    """Training mode, gradients on: PyTorch's slow path, plain padded tensors. The watch's
    statistics and gradient RMS are those of the real tokens (the reference's), in either
    layout (a sequence-first encoder's layers output (seq, batch, ...): read transposed)."""
    import netxray

    m = model(batch_first=batch_first).train()
    batches = data()
    want, grads = reference(m, batches[:1])
    with netxray.watch(m, tmp_path / "run", every=1, layers=[LAYER], bins=0,
                       alarms="raise") as w:
        b = batches[0]
        loss = nn.functional.cross_entropy(m(b["x"], b["src_key_padding_mask"]), b["labels"],
                                           reduction="sum")
        loss.backward()
        w.step(loss=loss)
    assert m.training
    with netxray.open_run(tmp_path / "run") as run:
        ls = run.layer_stats(LAYER)
        assert ls.nan[0] == 0
        np.testing.assert_allclose(ls.mean[0], want.mean(), rtol=1e-5)
        np.testing.assert_allclose(ls.frac_active[0], (want > 0).mean(), rtol=1e-6)
        # per element of one token's output: sqrt(mean over real tokens of |g|^2 / units)
        np.testing.assert_allclose(ls.grad_rms[0], np.sqrt((grads**2).sum(1).mean()
                                                           / want.shape[1]), rtol=1e-5)
