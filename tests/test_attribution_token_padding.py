"""Occlusion and FeatureAblation on padded batches of token ids: ``mask=`` (the attention
mask) keeps padding as it is and gives it no score, checked against Captum (given per-sample
baselines that leave padding unchanged, so it computes the same thing) on a small BERT and
an embedding + GRU that reads its padding; ``token_scores()`` of a per-token attribution
against a by-hand loop; per-token-id statistics over a dataset."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from netxray._warnings import NetxrayWarning
from netxray.attribution import Attribution, FeatureAblation, Occlusion, attribute_dataset

transformers = pytest.importorskip("transformers")
ca = pytest.importorskip("captum.attr")

TOL = 1e-5  # float32 models: absolute tolerance against Captum and against the loops
PAD, MASK_ID = 0, 2

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum", "ignore::FutureWarning")


class Bert(nn.Module):
    """Ids and attention mask in, logits out: a BERT that ignores its padding."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        cfg = transformers.BertConfig(
            vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=32, max_position_embeddings=16, num_labels=3,
        )  # fmt: skip
        self.hf = transformers.BertForSequenceClassification(cfg)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=ids, attention_mask=mask).logits


class Gru(nn.Module):
    """Embedding + GRU, last state to logits: it reads its padding, so a pad id matters."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.emb = nn.Embedding(40, 8)
        self.gru = nn.GRU(8, 8, batch_first=True)
        self.lin = nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lin(self.gru(self.emb(ids))[0][:, -1])


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Four right-padded sequences of 9 (lengths 9, 7, 4, 2)."""
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, 40, (4, 9), generator=g)
    mask = (torch.arange(9)[None] < torch.tensor([9, 7, 4, 2])[:, None]).long()
    return ids.masked_fill(mask == 0, PAD), mask


def build(kind: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """``(model, additional_forward_args)`` for the batch above."""
    _, mask = batch()
    return (Bert().eval(), (mask,)) if kind == "bert" else (Gru().eval(), ())


def _call(model: nn.Module, ids: torch.Tensor, args: tuple[torch.Tensor, ...]) -> torch.Tensor:
    with torch.no_grad():
        return model(ids, *args)


@pytest.mark.parametrize("kind", ["bert", "gru"])
def test_masked_perturbation_matches_captum_and_scores_no_padding(kind):
    model, args = build(kind)
    ids, mask = batch()
    real = mask.bool()
    t = torch.tensor([0, 2, 1, 0])
    # Captum, told to leave padding as it is: the baseline is the input itself there
    keep_pad = torch.where(real, torch.full_like(ids, MASK_ID), ids)
    for ibs in (None, 5):
        occ = Occlusion(model).attribute(
            ids, target=t, window=3, stride=1, baselines=MASK_ID, additional_forward_args=args,
            mask=mask, internal_batch_size=ibs,
        )  # fmt: skip
        ref = ca.Occlusion(model).attribute(
            ids, target=t, sliding_window_shapes=(3,), strides=(1,), baselines=keep_pad,
            additional_forward_args=args or None,
        )  # fmt: skip
        torch.testing.assert_close(occ.values[real], ref[real], atol=TOL, rtol=0)
        assert bool((occ.values[~real] == 0).all())
        assert torch.equal(occ.mask, real) and torch.equal(occ.token_scores(), occ.values)
        groups = torch.arange(9) // 2
        fa = FeatureAblation(model).attribute(
            ids, target=t, feature_mask=groups, baselines=MASK_ID, additional_forward_args=args,
            mask=mask, internal_batch_size=ibs,
        )  # fmt: skip
        ref = ca.FeatureAblation(model).attribute(
            ids, target=t, feature_mask=groups[None], baselines=keep_pad,
            additional_forward_args=args or None,
        )  # fmt: skip
        torch.testing.assert_close(fa.values[real], ref[real], atol=TOL, rtol=0)
        assert bool((fa.values[~real] == 0).all())


def test_without_a_mask_the_gru_scores_its_padding():
    """Why the mask matters: the GRU reads padding, so turning a pad into a mask id moves its
    output and the padding gets scores that look real."""
    model, _ = build("gru")
    ids, mask = batch()
    loose = Occlusion(model).attribute(ids, target=0, window=1, baselines=MASK_ID)
    assert float(loose.values[mask == 0].abs().max()) > 1e-3
    masked = Occlusion(model).attribute(ids, target=0, window=1, baselines=MASK_ID, mask=mask)
    assert bool((masked.values[mask == 0] == 0).all())


def _by_hand(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, t: torch.Tensor,
             args: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Per sample, per real token: F(ids) - F(that token set to MASK_ID), one call each."""
    out = torch.zeros(ids.shape)
    for i in range(ids.shape[0]):
        row = tuple(a[i : i + 1] for a in args)
        f = _call(model, ids[i : i + 1], row)[0, t[i]]
        for p in torch.nonzero(mask[i]).flatten():
            cut = ids[i : i + 1].clone()
            cut[0, p] = MASK_ID
            out[i, p] = f - _call(model, cut, row)[0, t[i]]
    return out


@pytest.mark.parametrize("kind", ["bert", "gru"])
def test_token_scores_of_occluded_tokens_equal_a_hand_loop(kind, monkeypatch):
    import netxray.attribution._engine as nxa

    model, args = build(kind)
    ids, mask = batch()
    t = torch.tensor([1, 0, 2, 1])
    expect = _by_hand(model, ids, mask, t, args)
    occ = Occlusion(model).attribute(
        ids, target=t, window=1, baselines=MASK_ID, additional_forward_args=args, mask=mask
    )
    torch.testing.assert_close(occ.token_scores(), expect, atol=TOL, rtol=0)
    assert occ.per_token and occ.token_scores().shape == (4, 9)
    monkeypatch.setattr(nxa, "_AUTO_CHUNK_ELEMENTS", 4)  # masks built per chunk
    fa = FeatureAblation(model).attribute(
        ids, target=t, baselines=MASK_ID, additional_forward_args=args, mask=mask,
        internal_batch_size=3,
    )  # fmt: skip
    torch.testing.assert_close(fa.token_scores(), expect, atol=TOL, rtol=0)


def test_token_scores_take_per_token_values_and_zero_padding():
    ids, mask = batch()
    v = torch.randn(ids.shape)
    v[3, 5] = float("nan")  # padding that came out NaN still scores exactly 0
    plain = Attribution(v, ids, None, None, "occlusion")
    assert plain.per_token  # no mask: the values as they are
    torch.testing.assert_close(plain.token_scores(), v, atol=0, rtol=0, equal_nan=True)
    masked = Attribution(v, ids, None, None, "occlusion", mask=mask.bool())
    expect = np.where(mask.numpy() == 1, v.numpy(), 0.0)
    np.testing.assert_array_equal(masked.token_scores().numpy(), expect)
    for bad in (Attribution(v, ids.float(), None, None, "occlusion"),  # features, not ids
                Attribution(v, ids, None, None, "x", layer="pooler")):  # a layer's units
        assert not bad.per_token
        with pytest.raises(ValueError, match="token_scores needs"):
            bad.token_scores()


class _Rows(nn.Module):
    """Counts the rows the model is run on."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.rows += ids.shape[0]
        return self.model(ids)


def test_windows_over_padding_only_are_not_run():
    model, _ = build("gru")
    ids, mask = batch()
    counted = _Rows(model).eval()
    Occlusion(counted).attribute(ids, target=0, window=2, stride=1, baselines=MASK_ID, mask=mask)
    lengths = mask.sum(1)
    touching = sum(sum(1 for a in range(8) if a < n) for n in lengths.tolist())  # start < len
    assert counted.rows == ids.shape[0] + touching  # the unperturbed pass, then those copies


def test_a_mask_over_embedded_inputs_leaves_padding_vectors_alone():
    """Float inputs ``(batch, seq, emb)``: the ``(batch, seq)`` mask covers whole vectors."""
    gru = Gru().eval()
    ids, mask = batch()
    with torch.no_grad():
        x = gru.emb(ids)
    head = nn.Sequential()
    head.forward = lambda e: gru.lin(gru.gru(e)[0][:, -1])  # type: ignore[method-assign]
    real = mask.bool()
    occ = Occlusion(head).attribute(x, target=1, window=(1, 8), mask=mask)
    keep = torch.where(real[..., None], torch.zeros_like(x), x)
    ref = ca.Occlusion(head).attribute(x, target=1, sliding_window_shapes=(1, 8), baselines=keep)
    torch.testing.assert_close(occ.values[real], ref[real], atol=TOL, rtol=0)
    assert bool((occ.values[~real] == 0).all()) and occ.token_scores().shape == (4, 9)
    torch.testing.assert_close(occ.token_scores(), occ.values.sum(-1) * mask, atol=0, rtol=0)


def test_an_attention_mask_among_the_arguments_without_mask_warns():
    model, args = build("bert")
    ids, mask = batch()
    with pytest.warns(NetxrayWarning, match=r"additional_forward_args\[0\] looks like the "
                                            r"attention mask .*id 0.*pass mask="):
        Occlusion(model).attribute(ids, target=0, window=1, baselines=MASK_ID,
                                   additional_forward_args=args)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NetxrayWarning)
        # padding already at the baseline: nothing of it changes
        Occlusion(model).attribute(ids, target=0, window=1, baselines=PAD,
                                   additional_forward_args=args)
        segments = (torch.arange(9)[None] >= 4).long().expand(4, 9)  # token types, not a mask
        two = _TwoArgs(model).eval()
        Occlusion(two).attribute(ids, target=0, window=1, baselines=MASK_ID,
                                 additional_forward_args=(mask, segments), mask=mask)
        Occlusion(two).attribute(ids, target=0, window=4, baselines=MASK_ID,
                                 additional_forward_args=(torch.ones_like(mask), segments))


class _TwoArgs(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        return self.model(ids, mask) + 0 * types.sum()


def test_mask_is_checked():
    model, args = build("gru")
    ids, mask = batch()
    with pytest.raises(ValueError, match=r"mask has shape \(4, 3\); .* the inputs \(4, 9\)"):
        Occlusion(model).attribute(ids, target=0, window=1, mask=mask[:, :3])


def test_dataset_of_occluded_tokens_counts_real_tokens_only():
    """attribute_dataset passes each batch's attention mask as mask=: per-token-id
    statistics of the scores against a direct NumPy group-by of the hand loop."""
    model, _ = build("bert")
    ids, mask = batch()
    labels = torch.tensor([0, 1, 1, 2])
    data = {"input_ids": ids, "attention_mask": mask, "labels": labels}

    class Keywords(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids, attention_mask)

    r = attribute_dataset(Occlusion(Keywords().eval()), data, target="label", batch_size=3,
                          window=1, baselines=MASK_ID)
    scores = _by_hand(model, ids, mask, labels, (mask,)).numpy()
    real = mask.numpy() == 1
    tok = r.tokens
    assert tok is not None and int(tok.count().sum()) == int(real.sum())
    flat_ids = ids.numpy()[real]
    flat_cls = np.broadcast_to(labels.numpy()[:, None], ids.shape)[real]
    for j, tid in enumerate(tok.token_ids.tolist()):
        for c in range(3):
            sel = (flat_ids == tid) & (flat_cls == c)
            assert int(tok.counts[j, c]) == int(sel.sum())
            np.testing.assert_allclose(float(tok.sum[j, c]), scores[real][sel].sum(), atol=TOL)
    np.testing.assert_allclose(float(r.mean_abs), np.abs(scores[real]).mean(), atol=TOL)
    assert r.mean_abs.shape == ()


def test_notebook_shows_occluded_tokens_as_token_scores():
    model, _ = build("gru")
    ids, mask = batch()
    occ = Occlusion(model).attribute(ids, target=0, window=1, baselines=MASK_ID, mask=mask)
    page = occ._repr_html_()
    assert "token scores, padding at 0" in page and page.count("<img") == 1
