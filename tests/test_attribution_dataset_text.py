"""attribute_dataset on real batches: dict batches of token ids with an attention mask,
per-token-id statistics checked against a direct NumPy computation, and independence from
batching and padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import netxray
from netxray.attribution import LayerIntegratedGradients, Saliency, TokenAttribution
from netxray.attribution.tokens import token_table

transformers = pytest.importorskip("transformers")

LAYER = "bert.embeddings.word_embeddings"


def bert() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=12, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=24, num_labels=3,
    )  # fmt: skip
    return transformers.BertForSequenceClassification(cfg).eval()


class Positional(nn.Module):
    """The same model called positionally and returning logits: the reference's call."""

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=ids, attention_mask=mask).logits


def text_data(n: int = 14, seq: int = 8, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 12, (n, seq), generator=g)  # a vocabulary of 9: tokens repeat
    lengths = torch.randint(2, seq + 1, (n,), generator=g)
    mask = (torch.arange(seq)[None] < lengths[:, None]).long()
    if pad_to is not None:
        ids = torch.cat([ids, torch.zeros(n, pad_to - seq, dtype=ids.dtype)], 1)
        mask = torch.cat([mask, torch.zeros(n, pad_to - seq, dtype=mask.dtype)], 1)
    y = torch.randint(0, 3, (n,), generator=g)
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask, "labels": y}


def reference(model: nn.Module, d: dict[str, torch.Tensor], n_steps: int = 8) -> dict:
    """Per (token id, class): count, mean, std, mean |score| from one direct call."""
    lig = LayerIntegratedGradients(Positional(model), layer="hf." + LAYER)
    a = lig.attribute(d["input_ids"], target=d["labels"], n_steps=n_steps,
                      additional_forward_args=(d["attention_mask"],), mask=d["attention_mask"])
    real = d["attention_mask"].bool().numpy()
    scores = a.token_scores().double().numpy()[real]
    ids = d["input_ids"].numpy()[real]
    cls = np.broadcast_to(d["labels"].numpy()[:, None], real.shape)[real]
    out = {}
    for t, c in set(zip(ids.tolist(), cls.tolist(), strict=True)):
        s = scores[(ids == t) & (cls == c)]
        out[t, c] = (len(s), s.mean(), s.std(ddof=1) if len(s) > 1 else np.nan, np.abs(s).mean())
    units = a.values.double().numpy()[real]  # (real tokens, hidden)
    return {"tokens": out, "mean_abs": np.abs(units).mean(0), "mean": units.mean(0),
            "class_mean_abs": np.stack([np.abs(units[cls == k]).mean(0) for k in range(3)])}


def check_against(tok: TokenAttribution, ref: dict) -> None:
    ids = tok.token_ids.tolist()
    seen = {(t, c) for i, t in enumerate(ids) for c in range(tok.n_classes)
            if int(tok.counts[i, c]) > 0}
    assert seen == set(ref)
    for (t, c), (n, mean, std, mabs) in ref.items():
        i = ids.index(t)
        assert int(tok.count(c)[i]) == n
        np.testing.assert_allclose(float(tok.mean(c)[i]), mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(float(tok.mean_abs(c)[i]), mabs, rtol=1e-5, atol=1e-7)
        if n > 1:
            np.testing.assert_allclose(float(tok.std(c)[i]), std, rtol=1e-4, atol=1e-7)
        else:
            assert np.isnan(float(tok.std(c)[i]))


def test_token_statistics_equal_a_direct_numpy_computation():
    model = bert()
    d = text_data()
    r = netxray.attribute_dataset(
        LayerIntegratedGradients(model, layer=LAYER), d, target="label", batch_size=4, n_steps=8
    )
    ref = reference(model, d)
    check_against(r.tokens, ref["tokens"])
    assert r.n_samples == 14 and r.tokens.grouped_by == "label" and r.tokens.layer == LAYER
    assert r.class_counts.tolist() == np.bincount(d["labels"].numpy(), minlength=3).tolist()
    # the per-unit means are over real tokens only
    np.testing.assert_allclose(r.mean_abs.double().numpy(), ref["mean_abs"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(r.mean.double().numpy(), ref["mean"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.class_mean_abs.double().numpy(), ref["class_mean_abs"],
                               rtol=1e-4, atol=1e-7)
    # every class summed: the dataset-wide counts
    ids = d["input_ids"][d["attention_mask"].bool()]
    assert r.tokens.count().tolist() == [int((ids == t).sum()) for t in r.tokens.token_ids]


def test_padding_and_batching_change_nothing():
    model = bert()
    lig = LayerIntegratedGradients(model, layer=LAYER)
    a = netxray.attribute_dataset(lig, text_data(), target="label", batch_size=14, n_steps=8)
    b = netxray.attribute_dataset(lig, text_data(pad_to=13), target="label", batch_size=3,
                                  n_steps=8)
    ta, tb = a.tokens, b.tokens
    assert torch.equal(ta.token_ids, tb.token_ids) and torch.equal(ta.counts, tb.counts)
    torch.testing.assert_close(ta.sum, tb.sum, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ta.sum_abs, tb.sum_abs, rtol=1e-4, atol=1e-6)


def test_a_dataloader_of_dynamically_padded_dicts():
    """Batches of different lengths (a collate that pads to the longest in the batch)."""
    model = bert()
    d = text_data()
    lengths = d["attention_mask"].sum(1)
    batches = []
    for s in range(0, 14, 5):
        sl = slice(s, s + 5)
        width = int(lengths[sl].max())
        batches.append({"input_ids": d["input_ids"][sl, :width],
                        "attention_mask": d["attention_mask"][sl, :width],
                        "labels": d["labels"][sl]})
    assert len({b["input_ids"].shape[1] for b in batches}) > 1
    r = netxray.attribute_dataset(LayerIntegratedGradients(model, layer=LAYER), batches,
                                  target="label", n_steps=8)
    check_against(r.tokens, reference(model, d)["tokens"])


def test_rare_tokens_are_counted_and_can_be_left_out_of_the_top():
    ids = torch.tensor([5, 5, 5, 7, 9, 9])
    scores = torch.tensor([1.0, 1.2, 0.8, 9.0, -1.0, -3.0])
    t = token_table(ids, scores, torch.zeros(6, dtype=torch.long), 1, method="m",
                    grouped_by="label", target="label")
    assert t.token_ids.tolist() == [5, 7, 9] and t.count().tolist() == [3, 1, 2]
    assert [int(t.token_ids[i]) for i in t.top(0, k=3)] == [7, 5, 9]  # 7 seen once tops it
    assert [int(t.token_ids[i]) for i in t.top(0, k=3, min_count=2)] == [5, 9]
    assert [int(t.token_ids[i]) for i in t.top(0, by="count")] == [5, 9, 7]
    np.testing.assert_allclose(t.std(0).numpy(), [np.std([1, 1.2, 0.8], ddof=1), np.nan,
                                                  np.std([-1, -3.0], ddof=1)])


def test_merge_equals_the_table_of_both_parts():
    g = torch.Generator().manual_seed(0)
    ids, s = torch.randint(0, 50, (200,), generator=g), torch.randn(200, generator=g)
    cls = torch.randint(0, 3, (200,), generator=g)
    meta = {"method": "m", "grouped_by": "label", "target": "label"}
    whole = token_table(ids, s, cls, 3, **meta)
    a = token_table(ids[:70], s[:70], cls[:70], 2 if int(cls[:70].max()) < 2 else 3, **meta)
    b = token_table(ids[70:], s[70:], cls[70:], 3, **meta)
    for m in (a.merge(b), b.merge(a)):
        assert torch.equal(m.token_ids, whole.token_ids) and torch.equal(m.counts, whole.counts)
        torch.testing.assert_close(m.sum, whole.sum)
        torch.testing.assert_close(m.sum_sq, whole.sum_sq)


def test_tensor_batches_with_an_output_key_and_input_methods_on_dicts():
    class DictOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> dict:
            z = self.fc(x if scale is None else x * scale)
            return {"hidden": x, "logits": z}

    torch.manual_seed(0)
    model = DictOut().eval()
    X, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    r = netxray.attribute_dataset(Saliency(model), (X, y), target="label", output="logits")
    w = model.fc.weight.detach()
    np.testing.assert_allclose(r.mean_abs.numpy(), w[y].abs().mean(0).numpy(), rtol=1e-6)
    # a dict batch: "x" is attributed, "scale" rides along by keyword
    scale = torch.full((10, 3), 2.0)
    r2 = netxray.attribute_dataset(Saliency(model), {"x": X, "scale": scale, "labels": y},
                                   target="label", input_key="x")
    np.testing.assert_allclose(r2.mean_abs.numpy(), 2 * w[y].abs().mean(0).numpy(), rtol=1e-6)
    assert r2.tokens is None


def test_float_token_ids_are_refused_as_token_ids_not_as_a_torch_dtype_error():
    """Float ids reached the embedding: torch's "Expected tensor for argument #1 'indices'".
    A dict's input_ids are refused before the model runs; a tensor, when the embedding
    refuses it, naming the embedding layers."""
    from netxray.attribution import FeatureAblation

    model = bert()
    d = text_data()
    floats = {**d, "input_ids": d["input_ids"].float()}
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        early = r"token ids must be integers \(got float32\); the batch's 'input_ids' entry"
        with pytest.raises(ValueError, match=early):
            netxray.activations(model, floats)
        with pytest.raises(ValueError, match=early):
            netxray.attribute_dataset(LayerIntegratedGradients(model, layer=LAYER), floats)
        assert calls == []  # refused before the model ran
    finally:
        handle.remove()
    named = (r"token ids must be integers \(got float32\); an embedding layer of the model "
             r"\(bert\.embeddings\.word_embeddings, ")
    ids = d["input_ids"].float()
    with pytest.raises(ValueError, match=named):
        netxray.activations(model, ids)
    with pytest.raises(ValueError, match=named):
        netxray.collect_stats(model, ids)
    for method in (LayerIntegratedGradients(model, layer=LAYER), FeatureAblation(model)):
        with pytest.raises(ValueError, match=named):
            method.attribute(ids, target=0)


def test_clear_errors_for_real_batches():
    model = bert()
    lig = LayerIntegratedGradients(model, layer=LAYER)
    d = text_data()
    with pytest.raises(ValueError, match="input_key='nope' is not a tensor entry"):
        netxray.attribute_dataset(lig, d, input_key="nope")
    with pytest.raises(ValueError, match="builds additional_forward_args"):
        netxray.attribute_dataset(lig, d, additional_forward_args=(d["attention_mask"],))
    no_labels = {k: v for k, v in d.items() if k != "labels"}
    with pytest.raises(ValueError, match="target='label' needs labels"):
        netxray.attribute_dataset(lig, no_labels, target="label")


def test_grouped_by_prediction_without_labels_round_trips(tmp_path):
    model = bert()
    d = {k: v for k, v in text_data().items() if k != "labels"}
    r = netxray.attribute_dataset(LayerIntegratedGradients(model, layer=LAYER), d,
                                  target=1, n_steps=4)
    with torch.no_grad():
        pred = model(**d).logits.argmax(1)
    assert r.grouped_by == "pred" and r.tokens.grouped_by == "pred"
    assert r.class_counts.tolist() == np.bincount(pred.numpy(), minlength=r.n_classes).tolist()
    back = type(r).load(r.save(tmp_path / "r.npz"))
    assert back == r and isinstance(back.tokens, TokenAttribution)
