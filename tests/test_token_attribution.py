"""Token attributions and Captum's calling convention: layer methods on transformers built
from small configs (random weights, no download) against Captum; tuple inputs and
``additional_forward_args``; SmoothGrad around any method; errors instead of silent zeros."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import netxray
from netxray._warnings import NetxrayWarning
from netxray.attribution import (
    FeatureAblation,
    InputXGradient,
    IntegratedGradients,
    LayerGradient,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    Occlusion,
    Saliency,
    SmoothGrad,
    explain,
)

transformers = pytest.importorskip("transformers")
ca = pytest.importorskip("captum.attr")

TOL = 1e-5


@pytest.fixture(autouse=True)
def _quiet_captum():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="captum")
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


class Logits(nn.Module):
    """What users write around an HF model: ids and mask in, logits out."""

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=ids, attention_mask=mask).logits


def bert() -> tuple[nn.Module, str]:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=3,
    )  # fmt: skip
    return Logits(transformers.BertForSequenceClassification(cfg)).eval(), "hf.bert.embeddings.word_embeddings"


def gpt2() -> tuple[nn.Module, str]:
    torch.manual_seed(1)
    cfg = transformers.GPT2Config(
        vocab_size=60, n_embd=16, n_layer=2, n_head=2, n_positions=16, num_labels=3,
        pad_token_id=0,
    )  # fmt: skip
    return Logits(transformers.GPT2ForSequenceClassification(cfg)).eval(), "hf.transformer.wte"


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, 60, (4, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    mask[3, 4:] = 0
    return ids.masked_fill(mask == 0, 0), mask


def _module(model: nn.Module, name: str) -> nn.Module:
    return dict(model.named_modules())[name]


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# --------------------------------------------------------------------------- vs Captum


@pytest.mark.parametrize("build", [bert, gpt2])
@pytest.mark.parametrize(
    ("method", "n_steps", "ibs"),
    [("gausslegendre", 50, None), ("gausslegendre", 20, 7), ("riemann_right", 16, 13)],
)
def test_layer_integrated_gradients_match_captum(build, method, n_steps, ibs):
    model, layer = build()
    ids, mask = batch()
    base = torch.zeros_like(ids)
    base[:, 0] = ids[:, 0]  # keep the first token: baselines are input ids, per sample
    for target in (1, torch.tensor([0, 1, 2, 1])):
        ours = LayerIntegratedGradients(model, layer=layer).attribute(
            ids, target=target, baselines=base, additional_forward_args=(mask,),
            n_steps=n_steps, method=method, internal_batch_size=ibs, mask=mask,
        )  # fmt: skip
        ref, delta = ca.LayerIntegratedGradients(model, _module(model, layer)).attribute(
            ids, target=target, baselines=base, additional_forward_args=(mask,),
            n_steps=n_steps, method=method, internal_batch_size=ibs,
            return_convergence_delta=True,
        )  # fmt: skip
        torch.testing.assert_close(ours.values, ref, atol=TOL, rtol=0)
        torch.testing.assert_close(ours.delta, delta, atol=TOL, rtol=0)
        assert ours.values.shape == (4, 9, 16) and ours.layer == layer
    assert _hooks(model) == 0


def test_a_model_output_gives_its_logits_as_the_wrapped_model_does():
    """An HF model called as is (it returns a ModelOutput) attributes its ``logits``: the
    numbers of the wrapper above, which is checked against Captum."""
    wrapped, layer = bert()
    hf = wrapped.hf
    ids, mask = batch()
    for cls in (LayerIntegratedGradients, netxray.LayerGradientXActivation):
        ref = cls(wrapped, layer=layer).attribute(ids, target=1, additional_forward_args=(mask,))
        ours = cls(hf, layer=layer.removeprefix("hf.")).attribute(
            ids, target=1, additional_forward_args=(mask,))
        torch.testing.assert_close(ours.values, ref.values, atol=1e-12, rtol=0)


class _NoTensor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> dict:
        self.lin(x)
        return {"label": "cat"}


def test_an_output_without_a_tensor_is_refused():
    with pytest.raises(ValueError, match="returned a dict with no tensor in it; wrap it"):
        netxray.Saliency(_NoTensor().eval()).attribute(torch.randn(4, 3), target=0)


def test_layer_given_as_a_module_and_default_baselines():
    model, layer = bert()
    ids, mask = batch()
    mod = _module(model, layer)
    ours = LayerIntegratedGradients(model, layer=mod).attribute(
        ids, target="pred", additional_forward_args=mask, n_steps=8
    )
    pred = model(ids, mask).argmax(1)
    ref = ca.LayerIntegratedGradients(model, mod).attribute(
        ids, target=pred, additional_forward_args=mask, n_steps=8
    )
    torch.testing.assert_close(ours.values, ref, atol=TOL, rtol=0)
    assert torch.equal(ours.target, pred) and ours.layer == layer


@pytest.mark.parametrize("build", [bert, gpt2])
def test_layer_gradient_methods_match_captum(build):
    model, layer = build()
    ids, mask = batch()
    mod = _module(model, layer)
    t = torch.tensor([2, 0, 1, 1])
    for ibs in (None, 3):
        gxa = LayerGradientXActivation(model, layer).attribute(
            ids, target=t, additional_forward_args=(mask,), internal_batch_size=ibs
        )
        ref = ca.LayerGradientXActivation(model, mod).attribute(
            ids, target=t, additional_forward_args=(mask,)
        )
        torch.testing.assert_close(gxa.values, ref, atol=TOL, rtol=0)
        grad = LayerGradient(model, layer).attribute(
            ids, target=t, additional_forward_args=(mask,), internal_batch_size=ibs
        )
        ref = ca.LayerGradientXActivation(model, mod, multiply_by_inputs=False).attribute(
            ids, target=t, additional_forward_args=(mask,)
        )
        torch.testing.assert_close(grad.values, ref, atol=TOL, rtol=0)


def test_token_scores_sum_the_embedding_and_zero_padding():
    model, layer = bert()
    ids, mask = batch()
    res = LayerIntegratedGradients(model, layer).attribute(
        ids, target=1, additional_forward_args=(mask,), n_steps=8, mask=mask
    )
    scores = res.token_scores()
    assert scores.shape == (4, 9)
    expect = res.values.sum(-1) * mask
    torch.testing.assert_close(scores, expect, atol=1e-7, rtol=0)
    assert bool((scores[mask == 0] == 0).all())
    # padding that came out NaN is still exactly 0, real tokens untouched
    v = res.values.clone()
    v[3, 5] = float("nan")
    nan = netxray.Attribution(v, res.inputs, res.target, res.delta, res.method, mask=res.mask)
    assert bool(torch.isfinite(nan.token_scores()).all())
    unmasked = LayerIntegratedGradients(model, layer).attribute(
        ids, target=1, additional_forward_args=(mask,), n_steps=8
    )
    torch.testing.assert_close(unmasked.token_scores(), res.values.sum(-1))
    with pytest.raises(ValueError, match="mask has shape"):
        LayerGradient(model, layer).attribute(
            ids, target=1, additional_forward_args=(mask,), mask=mask[:, :3]
        )
    x = torch.randn(3, 5)
    with pytest.raises(ValueError, match="token_scores needs"):
        Saliency(nn.Linear(5, 2)).attribute(x, target=0).token_scores()


def test_result_with_mask_round_trips(tmp_path):
    model, layer = bert()
    ids, mask = batch()
    res = LayerIntegratedGradients(model, layer).attribute(
        ids, target=1, additional_forward_args=(mask,), n_steps=4, mask=mask
    )
    back = netxray.Attribution.load(res.save(tmp_path / "tok.npz"))
    assert back == res and torch.equal(back.token_scores(), res.token_scores())


# --------------------------------------------------------------------------- the contract


class _BoomAfter(nn.Module):
    """An embedding then a failure: the hook on the embedding must still go."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.emb(ids)
        raise RuntimeError("boom")


def test_no_hook_survives_an_exception_and_state_is_restored():
    model, layer = bert()
    ids, mask = batch()
    model.hf.classifier.weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    for cls in (LayerIntegratedGradients, LayerGradient, LayerGradientXActivation):
        cls(model, layer).attribute(ids, target=0, additional_forward_args=(mask,))
        assert [p.requires_grad for p in model.parameters()] == flags
        assert all(p.grad is None for p in model.parameters()) and not model.training
    boom = _BoomAfter()
    for cls in (LayerIntegratedGradients, LayerGradient, LayerGradientXActivation):
        with pytest.raises(RuntimeError, match="boom"):
            cls(boom, "emb").attribute(torch.zeros(2, 3, dtype=torch.long), target=0)
        assert _hooks(boom) == 0
    assert _hooks(model) == 0


# --------------------------------------------------------------------------- tuples and args


class TwoInputs(nn.Module):
    """Two inputs and a per-sample scale passed after them."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.a = nn.Linear(5, 8)
        self.b = nn.Linear(3, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, scale: torch.Tensor, k: float):
        return self.out(torch.tanh(self.a(x1) + self.b(x2) * scale[:, None])) * k


def two_inputs():
    g = torch.Generator().manual_seed(5)
    x1, x2 = torch.randn(6, 5, generator=g), torch.randn(6, 3, generator=g)
    scale = torch.rand(6, generator=g) + 0.5
    return TwoInputs().eval(), (x1, x2), (scale, 2.0)


def _close_tuple(ours, ref, atol=TOL):
    assert isinstance(ours, tuple) and len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, atol=atol, rtol=0)


def test_input_methods_take_tuples_and_additional_forward_args():
    model, xs, args = two_inputs()
    t = torch.tensor([0, 1, 2, 0, 1, 2])
    for ibs in (None, 4):
        kw = {"target": t, "additional_forward_args": args}
        _close_tuple(
            Saliency(model).attribute(xs, **kw, internal_batch_size=ibs).values,
            ca.Saliency(model).attribute(xs, **kw),
        )
        _close_tuple(
            InputXGradient(model).attribute(xs, **kw, internal_batch_size=ibs).values,
            ca.InputXGradient(model).attribute(xs, **kw),
        )
        bases = (0.1, torch.full((1, 3), -0.2))
        ours = IntegratedGradients(model).attribute(
            xs, **kw, baselines=bases, n_steps=20, internal_batch_size=ibs
        )
        ref, delta = ca.IntegratedGradients(model).attribute(
            xs, **kw, baselines=bases, n_steps=20, return_convergence_delta=True
        )
        _close_tuple(ours.values, ref)
        torch.testing.assert_close(ours.delta, delta, atol=TOL, rtol=0)
        assert isinstance(ours.inputs, tuple) and len(ours) == 6


@pytest.mark.parametrize("variant", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_wraps_any_method_like_noise_tunnel(variant):
    model, xs, args = two_inputs()
    t = 1
    cases = [
        (SmoothGrad(model), ca.Saliency(model), {"abs": False}, {}),
        (SmoothGrad(Saliency(model)), ca.Saliency(model), {"abs": True}, {"abs": True}),
        (SmoothGrad(Saliency(model)), ca.Saliency(model), {"abs": False}, {"abs": False}),
        (SmoothGrad(InputXGradient(model)), ca.InputXGradient(model), {}, {}),
        (
            SmoothGrad(IntegratedGradients(model)), ca.IntegratedGradients(model),
            {"n_steps": 8}, {"n_steps": 8},
        ),
    ]  # fmt: skip
    for ours_m, ref_m, ref_kw, our_kw in cases:
        for batch_size in (None, 2):
            ours = ours_m.attribute(
                xs, target=t, noise_std=(0.2, 0.4), n_samples=5, seed=9, variant=variant,
                additional_forward_args=args, nt_samples_batch_size=batch_size, **our_kw,
            )  # fmt: skip
            torch.manual_seed(9)
            ref = ca.NoiseTunnel(ref_m).attribute(
                xs, target=t, nt_type=variant, nt_samples=5, stdevs=(0.2, 0.4),
                nt_samples_batch_size=batch_size, additional_forward_args=args, **ref_kw,
            )  # fmt: skip
            _close_tuple(ours.values, ref)


def test_integrated_gradients_on_one_dimensional_inputs():
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 2))

    class OneD(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x.unsqueeze(1))

    model = OneD().eval()
    x = torch.linspace(-2, 2, 7)
    ours = IntegratedGradients(model).attribute(x, target=1, baselines=0.5, n_steps=16)
    ref, delta = ca.IntegratedGradients(model).attribute(
        x, target=1, baselines=0.5, n_steps=16, return_convergence_delta=True
    )
    assert ours.values.shape == (7,)
    torch.testing.assert_close(ours.values, ref, atol=TOL, rtol=0)
    torch.testing.assert_close(ours.delta, delta, atol=TOL, rtol=0)


# --------------------------------------------------------------------------- no silent zeros


class CastsToIds(nn.Module):
    """Float inputs cast back to token ids inside: no gradient reaches them."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.tok_embeddings = nn.Embedding(20, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "cast":
            h = self.tok_embeddings(x.long()).mean(1)
        else:
            h = self.tok_embeddings.weight[:3].sum(0) * x.detach().mean(1, keepdim=True)
        return self.head(h)


@pytest.mark.parametrize("how", ["cast", "detach"])
def test_no_gradient_raises_and_names_the_embedding(how):
    model = CastsToIds(how).eval()
    x = torch.randint(0, 20, (3, 5)).float()
    calls = [
        lambda: Saliency(model).attribute(x, target=0),
        lambda: InputXGradient(model).attribute(x, target=0),
        lambda: IntegratedGradients(model).attribute(x, target=0, n_steps=4),
        lambda: SmoothGrad(model).attribute(x, target=0, n_samples=2),
        lambda: explain(model, x, method="integrated_gradients"),
        lambda: explain(model, x, method="saliency"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"no gradient reaches.*layer='tok_embeddings'"):
            call()
    model.requires_grad_(False)  # a frozen model: the output needs no grad at all
    with pytest.raises(ValueError, match="LayerIntegratedGradients"):
        Saliency(model).attribute(x, target=0)


def test_integer_ids_are_refused_with_the_embedding_to_use():
    model, layer = bert()
    ids, mask = batch()
    for method in ("saliency", "integrated_gradients", "input_x_gradient", "smoothgrad"):
        with pytest.raises(ValueError, match=f"layer='{layer}'"):
            explain(model, ids, method=method, additional_forward_args=(mask,))


# --------------------------------------------------------------------------- occluding tokens


def _drops(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, t: torch.Tensor,
           spans: list[tuple[int, int]], pad: int) -> torch.Tensor:
    """By hand: per token, the mean over the spans covering it of F(ids) - F(span set to pad)."""
    with torch.no_grad():
        f = model(ids, mask).gather(1, t[:, None])[:, 0]
        total = torch.zeros(ids.shape, dtype=torch.float32)
        count = torch.zeros(ids.shape[1])
        for a, b in spans:
            cut = ids.clone()
            cut[:, a:b] = pad
            total[:, a:b] += (f - model(cut, mask).gather(1, t[:, None])[:, 0])[:, None]
            count[a:b] += 1
    return total / count


@pytest.mark.parametrize("build", [bert, gpt2])
def test_occlusion_and_ablation_replace_token_ids_by_a_baseline_id(build):
    model, _ = build()
    ids, mask = batch()
    seq, pad = ids.shape[1], 1
    t = torch.tensor([0, 2, 1, 0])
    with pytest.warns(NetxrayWarning, match=r"looks like the attention mask .*pass mask="):
        occ = Occlusion(model).attribute(
            ids, target=t, window=2, stride=1, baselines=pad, additional_forward_args=(mask,),
            internal_batch_size=10,
        )  # fmt: skip
    by_hand = _drops(model, ids, mask, t, [(a, a + 2) for a in range(seq - 1)], pad)
    torch.testing.assert_close(occ.values, by_hand, atol=TOL, rtol=0)
    assert occ.values.dtype == torch.float32 and occ.values.shape == ids.shape
    ref = ca.Occlusion(model).attribute(
        ids, target=t, sliding_window_shapes=(2,), strides=(1,), baselines=pad,
        additional_forward_args=(mask,),
    )  # fmt: skip
    torch.testing.assert_close(occ.values, ref, atol=TOL, rtol=0)
    groups = torch.arange(seq) // 3  # three tokens at a time
    with pytest.warns(NetxrayWarning, match="looks like the attention mask"):
        fa = FeatureAblation(model).attribute(
            ids, target=t, feature_mask=groups, baselines=pad, additional_forward_args=(mask,)
        )
    by_hand = _drops(model, ids, mask, t, [(a, a + 3) for a in range(0, seq, 3)], pad)
    torch.testing.assert_close(fa.values, by_hand, atol=TOL, rtol=0)
    ref = ca.FeatureAblation(model).attribute(
        ids, target=t, feature_mask=groups[None], baselines=pad, additional_forward_args=(mask,)
    )
    torch.testing.assert_close(fa.values, ref, atol=TOL, rtol=0)
    assert _hooks(model) == 0


def test_token_occlusion_errors_say_what_to_pass():
    model, _ = bert()
    ids, mask = batch()
    for bad in (0.5, torch.zeros(9)):
        with pytest.raises(ValueError, match="pad_token_id"):
            Occlusion(model).attribute(ids, target=0, window=1, baselines=bad)
    with pytest.raises(ValueError, match=r"int64 inputs .*pass them as floats"):
        FeatureAblation(nn.Linear(9, 2).eval()).attribute(ids, target=0)
    with pytest.raises(TypeError, match="integer ids"):
        Occlusion(model).attribute(ids > 5, target=0, window=1)
    with pytest.raises(ValueError, match=r"token ids must be integers \(got float32\); an "
                                         r"embedding layer of the model \(hf\.bert\.embeddings"):
        Occlusion(model).attribute(ids.float(), target=0, window=1, additional_forward_args=(mask,))
    # float ids to a gradient method: the message says where to go next (integer ids have
    # no gradient either), not only "make them integers"
    from netxray.attribution import Saliency

    with pytest.raises(ValueError, match=r"must be integers.*no gradient.*LayerIntegratedGradients"):
        Saliency(model).attribute(ids.float(), target=0, additional_forward_args=(mask,))


# --------------------------------------------------------------------------- edges (issue 11)


def test_nan_weight_warns_naming_the_parameter():
    model, xs, args = two_inputs()
    with torch.no_grad():
        model.b.weight[0, 0] = float("nan")
    for call in (
        lambda: Saliency(model).attribute(xs, target=0, additional_forward_args=args),
        lambda: IntegratedGradients(model).attribute(
            xs, target=0, additional_forward_args=args, n_steps=4
        ),
    ):
        with pytest.warns(NetxrayWarning, match=r"parameter\(s\) b\.weight hold NaN"):
            call()
    lin = nn.Linear(2, 2)
    with pytest.warns(NetxrayWarning, match="outputs or gradients are NaN"):
        Saliency(lambda_model(lin)).attribute(torch.randn(3, 2), target=0)


def lambda_model(lin: nn.Module) -> nn.Module:
    class Log(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = lin

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.log(-self.lin(x).abs() - 1.0)  # log of a negative: NaN

    return Log()


def test_unbounded_requests_are_chunked_or_refused_up_front():
    from netxray.attribution._engine import MAX_GAUSS_LEGENDRE_STEPS, _ig_rule

    model, xs, args = two_inputs()
    ig = IntegratedGradients(model)
    with pytest.raises(ValueError, match=r"gausslegendre with n_steps=1000000000 .*GiB"):
        ig.attribute(xs, target=0, additional_forward_args=args, n_steps=10**9)
    # Riemann points are made chunk by chunk: a billion steps cost nothing up front
    rule = _ig_rule("riemann_middle", 10**9)
    a, w = rule.take(slice(10**9 - 2, 10**9))
    assert a.tolist() == [(10**9 - 1.5) / 10**9, (10**9 - 0.5) / 10**9] and w[0] == 1e-9
    with pytest.raises(ValueError, match=r"GiB of inputs alone.*internal_batch_size <= \d+"):
        ig.attribute(
            xs, target=0, additional_forward_args=args, n_steps=10**9,
            method="riemann_middle", internal_batch_size=10**12,
        )  # fmt: skip
    with pytest.raises(ValueError, match="internal_batch_size <="):
        SmoothGrad(model).attribute(
            xs, target=0, additional_forward_args=args, n_samples=10**11,
            nt_samples_batch_size=10**11,
        )
    assert MAX_GAUSS_LEGENDRE_STEPS >= 1024
    # a trapezoid rule made in chunks equals the whole rule
    rule = _ig_rule("riemann_trapezoid", 5)
    a, w = rule.take(slice(0, 5))
    assert a.tolist() == [0, 0.25, 0.5, 0.75, 1] and w.tolist() == [0.125, 0.25, 0.25, 0.25, 0.125]


def test_new_names_are_exported():
    for name in ("LayerIntegratedGradients", "LayerGradient", "LayerGradientXActivation"):
        assert name in netxray.__all__ and getattr(netxray, name) is getattr(
            netxray.attribution, name
        )
