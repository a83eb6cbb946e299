"""A HuggingFace model given labels computes its own loss (next-token for a causal LM);
netxray's loss and gradient statistics follow that loss, checked against the model's
``out.loss`` and torch.autograd."""

import numpy as np
import pytest
import torch

import netxray
from padded_ids import padded

transformers = pytest.importorskip("transformers")

LAYER = "transformer.h.0.mlp.act"
SEQS = [[5, 17, 23, 9, 41, 3], [12, 7], [33, 8, 8, 19], [44, 2, 9], [6, 30, 2, 27, 11, 38, 4]]


def gpt2(cls=None):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=2, n_positions=16)
    return (cls or transformers.GPT2LMHeadModel)(cfg).eval()


def batches(width=8, size=3, pad_label=-100):
    out = []
    for i in range(0, len(SEQS), size):
        ids, am = padded(SEQS[i:i + size], width)
        out.append({"input_ids": ids, "attention_mask": am,
                    "labels": ids.masked_fill(am == 0, pad_label)})
    return out


def reference(model, data, name=LAYER):
    """Per batch the model's own out.loss, weighted by the targets it averages over
    (labels[:, 1:] != -100); the layer's real-token rows of d(summed loss)/d(output) by
    autograd; the full-data gradient of one weight; and the loss recomputed by hand."""
    module = dict(model.named_modules())[name]
    loss_sum = n_sum = 0.0
    grads, hand = [], []
    weight = model.transformer.h[1].mlp.c_fc.weight
    wgrad = torch.zeros_like(weight, dtype=torch.float64)
    for b in data:
        kept = []
        h = module.register_forward_hook(lambda _m, _i, out, kept=kept: kept.append(out))
        try:
            out = model(**b)
        finally:
            h.remove()
        n = int((b["labels"][:, 1:] != -100).sum())
        g, gw = torch.autograd.grad(out.loss * n, [kept[0], weight])
        grads.append(g[b["attention_mask"].bool()].double().numpy())
        wgrad += gw.double()
        loss_sum += float(out.loss.detach()) * n
        n_sum += n
        logp = torch.log_softmax(out.logits.double(), -1)[:, :-1]
        y = b["labels"][:, 1:]
        keep = y != -100
        hand.append(-logp[keep].gather(1, y[keep][:, None]).sum().item())
    return loss_sum / n_sum, np.concatenate(grads), float(wgrad.norm() / n_sum), sum(hand) / n_sum


def test_causal_lm_loss_and_gradients_follow_the_models_next_token_loss():
    model = gpt2()
    data = batches()
    loss, g, wnorm, hand = reference(model, data)
    assert loss == pytest.approx(hand, rel=1e-5)  # next-token cross-entropy
    stats = netxray.collect_stats(model, data, LAYER, gradients=True)
    assert stats.loss == pytest.approx(loss, rel=1e-5)
    s = stats[LAYER]
    assert s.per_token and s.count[0] == sum(map(len, SEQS)) == g.shape[0]
    assert s.grad_norm == pytest.approx(np.sqrt((g ** 2).sum() / g.shape[0]), rel=1e-4)
    np.testing.assert_allclose(s.grad_abs_mean, np.abs(g).mean(0), rtol=1e-4, atol=1e-9)
    p = stats.params["transformer.h.1.mlp.c_fc.weight"]
    assert p.grad_norm == pytest.approx(wnorm, rel=1e-4)
    # diagnose and precheck report the same loss; precheck compares it to ln(vocabulary)
    assert netxray.diagnose(model, data, LAYER).loss == pytest.approx(loss, rel=1e-5)
    pre = netxray.precheck(model, data, layers=LAYER)
    assert pre.loss == pytest.approx(loss, rel=1e-5)
    assert pre.expected_loss == pytest.approx(np.log(50))
    # the model is left as it was
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert not model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_loss_does_not_depend_on_batching_and_an_explicit_loss_fn_wins():
    model = gpt2()
    a = netxray.collect_stats(model, batches(8, 3), LAYER, gradients=True)
    b = netxray.collect_stats(model, batches(10, 2), LAYER, gradients=True)
    assert a.loss == pytest.approx(b.loss, rel=1e-5)
    assert a[LAYER].grad_norm == pytest.approx(b[LAYER].grad_norm, rel=1e-4)
    # netxray's default loss, asked for, is per position over the real tokens (no shift)
    data = batches()
    mine = netxray.collect_stats(model, data, LAYER, gradients=True,
                                 loss_fn=netxray.stats.default_loss)
    with torch.no_grad():
        logits = [model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                  for b in data]
    flat = torch.cat([lg[b["attention_mask"].bool()] for lg, b in zip(logits, data, strict=True)])
    ids = torch.cat([b["input_ids"][b["attention_mask"].bool()] for b in data])
    unshifted = torch.nn.functional.cross_entropy(flat.double(), ids).item()
    assert mine.loss == pytest.approx(unshifted, rel=1e-5)
    assert abs(mine.loss - a.loss) > 0.05  # the two losses differ: the test can tell


def test_labels_at_padding_that_count_are_warned_about():
    model = gpt2()
    data = batches(pad_label=0)  # labels = input_ids, padding included
    with pytest.warns(UserWarning, match="labels at padding positions are not -100"):
        stats = netxray.collect_stats(model, data, LAYER, gradients=True)
    own = []
    with torch.no_grad():
        for b in data:
            out = model(**b)
            own.append((float(out.loss), b["labels"].shape[0] * (b["labels"].shape[1] - 1)))
    assert stats.loss == pytest.approx(sum(v * n for v, n in own) / sum(n for _, n in own),
                                       rel=1e-5)


class DoubledLoss(transformers.GPT2LMHeadModel):
    """A model whose loss none of the HF conventions reproduces."""

    def forward(self, input_ids=None, attention_mask=None, labels=None):
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        if out.loss is not None:
            out.loss = 2 * out.loss
        return out


def test_a_loss_netxray_cannot_split_into_rows_is_refused():
    model = gpt2(DoubledLoss)
    with pytest.raises(ValueError, match="cannot reproduce it.*next-token.*loss_fn="):
        netxray.diagnose(model, batches(), LAYER)
    bad = [{**b, "labels": b["labels"].masked_fill(b["labels"] == 17, 56)} for b in batches()]
    with pytest.raises(ValueError, match="refuses them.*Target 56.*-100"):
        netxray.diagnose(gpt2(), bad, LAYER)
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
