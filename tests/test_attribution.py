"""Attribution methods against Captum, closed forms and the lecture's NumPy numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lecture_reference import PRINTED_SALIENCY, train_lecture
from netxray.attribution import (
    Attribution,
    DatasetAttribution,
    FeatureAblation,
    FiniteDifference,
    InputXGradient,
    IntegratedGradients,
    LayerGradientXActivation,
    NeuronGradient,
    NeuronIntegratedGradients,
    Occlusion,
    Saliency,
    SmoothGrad,
    attribute_dataset,
)

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.fixture(autouse=True)
def _quiet_captum():
    # Captum warns that it sets requires_grad on its inputs; that is Captum's business.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="captum")
        yield


def mlp(dtype: torch.dtype, n_out: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, n_out)
    ).to(dtype)


def cnn(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3), nn.Tanh(),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 3),
    ).to(dtype)  # fmt: skip


def several(dtype: torch.dtype) -> nn.Module:
    """Several outputs (7), so targets index a wider output."""
    return mlp(dtype, n_out=7)


MODELS = {
    "mlp": (mlp, (5,)),
    "cnn": (cnn, (1, 6, 6)),
    "several": (several, (5,)),
}


def make(name: str, dtype: torch.dtype, n: int = 6):
    build, shape = MODELS[name]
    model = build(dtype).eval()
    g = torch.Generator().manual_seed(7)
    x = torch.randn((n, *shape), generator=g).to(dtype)
    k = model(x).shape[1]
    targets = [1, torch.arange(n) % k]
    return model, x, targets


def close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, scale: float = 1.0) -> None:
    torch.testing.assert_close(a, b.to(a.dtype), atol=TOL[dtype] * scale, rtol=0)


# --------------------------------------------------------------------------- vs Captum

PARAMS = [(m, d) for m in MODELS for d in (torch.float32, torch.float64)]


@pytest.mark.parametrize(("name", "dtype"), PARAMS)
def test_gradient_methods_match_captum(name, dtype):
    import captum.attr as ca

    model, x, targets = make(name, dtype)
    for t in targets:
        close(
            Saliency(model).attribute(x, target=t).values,
            ca.Saliency(model).attribute(x, target=t),
            dtype,
        )
        close(
            Saliency(model).attribute(x, target=t, abs=False).values,
            ca.Saliency(model).attribute(x, target=t, abs=False),
            dtype,
        )
        close(
            InputXGradient(model).attribute(x, target=t).values,
            ca.InputXGradient(model).attribute(x, target=t),
            dtype,
        )


@pytest.mark.parametrize(("name", "dtype"), PARAMS)
@pytest.mark.parametrize(
    ("rule", "n_steps"),
    # step counts whose points and weights are exact in float32: Captum casts its weights
    # (and Riemann points) to float32 even for float64 models
    [("riemann_left", 16), ("riemann_right", 8), ("riemann_middle", 16)],
)
def test_integrated_gradients_match_captum(name, dtype, rule, n_steps):
    import captum.attr as ca

    model, x, targets = make(name, dtype)
    base = 0.1 * torch.ones_like(x[0])
    for t in targets:
        ours = IntegratedGradients(model).attribute(
            x, target=t, baselines=base, n_steps=n_steps, method=rule, internal_batch_size=37
        )
        ref, delta = ca.IntegratedGradients(model).attribute(
            x, target=t, baselines=base.expand_as(x), n_steps=n_steps, method=rule,
            return_convergence_delta=True,
        )  # fmt: skip
        close(ours.values, ref, dtype)
        close(ours.delta, delta, dtype)


@pytest.mark.parametrize(("name", "dtype"), PARAMS)
def test_integrated_gradients_gausslegendre(name, dtype):
    """Default rule: vs Captum (float32 weights: 1e-7 relative in float64) and, to 1e-10, vs
    an independent float64 sum of Captum gradients at NumPy's Gauss-Legendre points."""
    import captum.attr as ca

    model, x, targets = make(name, dtype)
    for t in targets:
        ours = IntegratedGradients(model).attribute(x, target=t)
        ref, delta = ca.IntegratedGradients(model).attribute(
            x, target=t, return_convergence_delta=True
        )
        scale = 1.0 if dtype == torch.float32 else 1e4  # 1e-6 absolute in float64
        close(ours.values, ref, dtype, scale)
        close(ours.delta, delta, dtype, scale)
        nodes, weights = np.polynomial.legendre.leggauss(50)
        points = torch.cat([0.5 * (a + 1) * x for a in nodes])  # all 50 points in one batch
        tt = t if isinstance(t, int) else t.repeat(50)
        grads = ca.Saliency(model).attribute(points, target=tt, abs=False).view(50, *x.shape)
        total = sum(0.5 * w * g for w, g in zip(weights, grads, strict=True))
        close(ours.values, total * x, dtype)


def test_trapezoid_rule_sums_to_one_unlike_captum():
    """Captum's riemann_trapezoid weights sum to 1 - 1/n (each 1/n, ends halved); ours are
    the trapezoid rule's 1/(n-1). Same points, so ours = Captum's * n/(n-1); on a linear
    model ours is exactly complete."""
    import captum.attr as ca

    for dtype, n in ((torch.float32, 33), (torch.float64, 2)):
        model, x, targets = make("mlp", dtype)
        ours = IntegratedGradients(model).attribute(
            x, target=2, method="riemann_trapezoid", n_steps=n
        )
        ref = ca.IntegratedGradients(model).attribute(
            x, target=2, method="riemann_trapezoid", n_steps=n
        )
        close(ours.values, ref * n / (n - 1), dtype)
    lin = nn.Linear(4, 2).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    res = IntegratedGradients(lin).attribute(x, target=1, method="riemann_trapezoid", n_steps=3)
    close(res.delta, torch.zeros(5), torch.float64)


@pytest.mark.parametrize(("name", "dtype"), PARAMS)
@pytest.mark.parametrize("variant", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_matches_captum_noise_tunnel(name, dtype, variant):
    import captum.attr as ca

    model, x, targets = make(name, dtype)
    for t in targets:
        ours = SmoothGrad(model).attribute(
            x, target=t, noise_std=0.3, n_samples=5, seed=11, variant=variant
        )
        torch.manual_seed(11)
        ref = ca.NoiseTunnel(ca.Saliency(model)).attribute(
            x, target=t, nt_type=variant, nt_samples=5, stdevs=0.3, abs=False
        )
        close(ours.values, ref, dtype)


@pytest.mark.parametrize(("name", "dtype"), PARAMS)
def test_perturbation_methods_match_captum(name, dtype):
    import captum.attr as ca

    model, x, targets = make(name, dtype, n=4)
    # Captum's Occlusion returns float32 even for float64 models (it divides by float counts)
    occ_scale = 1.0 if dtype == torch.float32 else 1e5
    if name == "cnn":
        windows = [((1, 3, 3), (1, 2, 2), 3), ((1, 2, 4), (1, 1, 3), (2, 4))]
        fmask = torch.arange(36).view(1, 6, 6) // 7
    else:
        windows = [((2,), (1,), (2,)), ((3,), (2,), 3)]
        fmask = torch.tensor([0, 0, 1, 2, 2])
    for t in targets:
        for cwin, cstride, win in windows:
            stride = cstride[-1] if isinstance(win, int) else cstride[-len(win) :]
            ours = Occlusion(model).attribute(
                x, target=t, window=win, stride=stride, baselines=0.2, internal_batch_size=9
            )
            ref = ca.Occlusion(model).attribute(
                x, target=t, sliding_window_shapes=cwin, strides=cstride, baselines=0.2
            )
            close(ours.values, ref, dtype, occ_scale)
        close(
            FeatureAblation(model).attribute(x, target=t).values,
            ca.FeatureAblation(model).attribute(x, target=t),
            dtype,
        )
        close(
            FeatureAblation(model)
            .attribute(x, target=t, feature_mask=fmask, baselines=x[0])
            .values,
            ca.FeatureAblation(model).attribute(
                x, target=t, feature_mask=fmask.unsqueeze(0), baselines=x[0].unsqueeze(0)
            ),
            dtype,
        )


@pytest.mark.parametrize(("name", "dtype"), PARAMS)
def test_layer_and_neuron_methods_match_captum(name, dtype):
    import captum.attr as ca

    model, x, targets = make(name, dtype)
    layer = "1"  # the first activation
    unit = 3 if name != "cnn" else (2, 1, 4)
    for t in targets:
        close(
            LayerGradientXActivation(model, layer).attribute(x, target=t).values,
            ca.LayerGradientXActivation(model, model[1]).attribute(x, target=t),
            dtype,
        )
    ng = NeuronGradient(model, layer).attribute(x, unit=unit)
    close(ng.values, ca.NeuronGradient(model, model[1]).attribute(x, neuron_selector=unit), dtype)
    nig = NeuronIntegratedGradients(model, layer).attribute(
        x, unit=unit, method="riemann_middle", n_steps=32, internal_batch_size=50
    )
    ref = ca.NeuronIntegratedGradients(model, model[1]).attribute(
        x, neuron_selector=unit, method="riemann_middle", n_steps=32
    )
    close(nig.values, ref, dtype)
    assert (
        nig.layer == "1" and nig.target is None and nig.params["unit"] == list(np.atleast_1d(unit))
    )


# --------------------------------------------------------------------------- axioms


def test_integrated_gradients_completeness_improves_with_steps():
    model, x, _ = make("mlp", torch.float64)
    errs = [
        float(
            IntegratedGradients(model)
            .attribute(x, target=0, n_steps=n, method="riemann_middle")
            .delta.abs()
            .max()
        )
        for n in (4, 16, 64)
    ]
    assert errs[0] > errs[1] > errs[2]
    gl = IntegratedGradients(model).attribute(x, target=0, n_steps=50).delta.abs().max()
    assert float(gl) < errs[0]


def test_neuron_integrated_gradients_delta_is_completeness():
    model, x, _ = make("mlp", torch.float64)
    res = NeuronIntegratedGradients(model, "1").attribute(x, unit=5, n_steps=64)
    with torch.no_grad():
        u = model[:2](x)[:, 5] - model[:2](torch.zeros_like(x))[:, 5]
    close(res.delta, res.values.sum(1) - u, torch.float64)
    assert float(res.delta.abs().max()) < 1e-6  # tanh unit: smooth, Gauss-Legendre is accurate


@given(
    w=st.lists(st.floats(-3, 3), min_size=4, max_size=4),
    xs=st.lists(st.floats(-5, 5), min_size=4, max_size=4),
)
@settings(max_examples=30, deadline=None)
def test_linear_model_saliency_is_weight_row_and_ig_is_w_times_x(w, xs):
    lin = nn.Linear(4, 2, dtype=torch.float64)
    with torch.no_grad():
        lin.weight[1] = torch.tensor(w, dtype=torch.float64)
    x = torch.tensor([xs], dtype=torch.float64)
    wt = torch.tensor([w], dtype=torch.float64)
    close(Saliency(lin).attribute(x, target=1).values, wt.abs(), torch.float64)
    close(Saliency(lin).attribute(x, target=1, abs=False).values, wt, torch.float64)
    ig = IntegratedGradients(lin).attribute(x, target=1, n_steps=3)
    close(ig.values, wt * x, torch.float64)
    assert abs(float(ig.delta[0])) < 1e-9


def test_occlusion_and_ablation_of_an_irrelevant_feature_are_zero():
    model = mlp(torch.float64)
    with torch.no_grad():
        model[0].weight[:, 2] = 0.0  # the model never looks at feature 2
    x = torch.randn(8, 5, dtype=torch.float64)
    occ = Occlusion(model).attribute(x, target="pred", window=1)
    fa = FeatureAblation(model).attribute(x, target="pred", baselines=3.0)
    assert torch.equal(occ.values[:, 2], torch.zeros(8, dtype=torch.float64))
    assert torch.equal(fa.values[:, 2], torch.zeros(8, dtype=torch.float64))
    assert occ.values[:, [0, 1, 3, 4]].abs().sum() > 0


def test_saliency_matches_central_finite_difference():
    model, x, _ = make("cnn", torch.float64)
    g = Saliency(model).attribute(x, target=2, abs=False).values
    eps = 1e-6
    idx = list(np.ndindex(*x.shape))
    plus = x[[i[0] for i in idx]].clone()  # one row per perturbed element, all in one batch
    minus = plus.clone()
    for r, i in enumerate(idx):
        plus[(r, *i[1:])] += eps
        minus[(r, *i[1:])] -= eps
    with torch.no_grad():
        fd = ((model(plus)[:, 2] - model(minus)[:, 2]) / (2 * eps)).view_as(x)
    torch.testing.assert_close(g, fd, atol=1e-7, rtol=0)
    ours = FiniteDifference(model, eps=1e-6).attribute(x, target=2, internal_batch_size=50)
    torch.testing.assert_close(ours.values, fd, atol=1e-9, rtol=0)


def test_finite_difference_reproduces_the_lecture():
    """The seed script's NumPy MLP (tests/lecture_reference.py); its last lines' saliency numbers."""
    W1, B1, W2, B2, _, X_test, _, y_test, _ = train_lecture(300)

    def predict_proba(a: np.ndarray) -> np.ndarray:
        logits = np.maximum(0, a @ W1 + B1) @ W2 + B2
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    res = FiniteDifference(predict_proba).attribute(X_test[:1], target=[int(np.argmax(y_test[0]))])
    np.testing.assert_allclose(res.values.numpy()[0], PRINTED_SALIENCY, atol=1e-8, rtol=0)
    assert res.values.dtype == torch.float64
    # batched over the whole test set, one chunk or many: the same numbers
    full = FiniteDifference(predict_proba).attribute(X_test, target="pred")
    chunked = FiniteDifference(predict_proba).attribute(
        X_test, target="pred", internal_batch_size=7
    )
    np.testing.assert_allclose(full.values.numpy(), chunked.values.numpy(), atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- contract


def test_chunking_does_not_change_results():
    model, x, _ = make("cnn", torch.float64, n=5)
    for kw in ({}, {"internal_batch_size": 3}, {"internal_batch_size": 1000}):
        a = IntegratedGradients(model).attribute(x, target="pred", n_steps=10, **kw)
        b = IntegratedGradients(model).attribute(
            x, target="pred", n_steps=10, internal_batch_size=7
        )
        close(a.values, b.values, torch.float64)
        close(a.delta, b.delta, torch.float64)
        s1 = Saliency(model).attribute(x, target=[0, 1, 2, 0, 1], **kw)
        s2 = Saliency(model).attribute(x, target=[0, 1, 2, 0, 1])
        close(s1.values, s2.values, torch.float64)
        close(
            LayerGradientXActivation(model, "2").attribute(x, target=1, **kw).values,
            LayerGradientXActivation(model, "2").attribute(x, target=1).values,
            torch.float64,
        )
        o1 = Occlusion(model).attribute(x, target=0, window=3, stride=2, **kw)
        o2 = Occlusion(model).attribute(x, target=0, window=3, stride=2)
        close(o1.values, o2.values, torch.float64)


def test_smoothgrad_is_seeded():
    model, x, _ = make("mlp", torch.float32)
    a = SmoothGrad(model).attribute(x, target=0, seed=3).values
    b = SmoothGrad(model).attribute(x, target=0, seed=3).values
    c = SmoothGrad(model).attribute(x, target=0, seed=4).values
    assert torch.equal(a, b) and not torch.equal(a, c)
    zero = SmoothGrad(model).attribute(x, target=0, noise_std=0.0, n_samples=3).values
    close(zero, Saliency(model).attribute(x, target=0, abs=False).values, torch.float32)


def test_pred_target_is_the_argmax_and_is_returned():
    model, x, _ = make("several", torch.float32, n=20)
    pred = model(x).argmax(1)
    for method in (Saliency(model), IntegratedGradients(model), SmoothGrad(model)):
        res = method.attribute(x, target="pred")
        assert torch.equal(res.target, pred)
    res = Saliency(model).attribute(x, target="pred")
    per = Saliency(model).attribute(x, target=pred)
    assert torch.equal(res.values, per.values)


def test_result_round_trips(tmp_path):
    model, x, _ = make("mlp", torch.float32)
    res = IntegratedGradients(model).attribute(x, target=1, n_steps=8)
    back = Attribution.load(res.save(tmp_path / "ig.npz"))
    assert torch.equal(back.values, res.values) and torch.equal(back.delta, res.delta)
    assert back.params == {"n_steps": 8, "method": "gausslegendre"} and back.method == res.method
    sal = Attribution.load(Saliency(model).attribute(x, target=1).save(tmp_path / "s.npz"))
    assert sal.delta is None
    assert set(res.to_dict()) >= {"values", "delta", "target", "method"}


def _state(model: nn.Module):
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [p.detach().clone() for p in model.parameters()],
    )


def _same(a, b) -> bool:
    if a[:2] != b[:2]:
        return False
    for ga, gb in zip(a[2], b[2], strict=True):
        if (ga is None) != (gb is None) or (ga is not None and not torch.equal(ga, gb)):
            return False
    return all(torch.equal(p, q) for p, q in zip(a[3], b[3], strict=True))


def _all_calls(model, x):
    yield lambda: Saliency(model).attribute(x, target=0)
    yield lambda: InputXGradient(model).attribute(x, target="pred")
    yield lambda: IntegratedGradients(model).attribute(x, target=1, n_steps=4)
    yield lambda: SmoothGrad(model).attribute(x, target=1, n_samples=2, seed=0)
    yield lambda: Occlusion(model).attribute(x, target=1, window=2)
    yield lambda: FeatureAblation(model).attribute(x, target=1)
    yield lambda: FiniteDifference(model).attribute(x, target=1)
    yield lambda: NeuronGradient(model, "1").attribute(x, unit=0)
    yield lambda: NeuronIntegratedGradients(model, "1").attribute(x, unit=0, n_steps=4)
    yield lambda: LayerGradientXActivation(model, "2").attribute(x, target=0)
    yield lambda: attribute_dataset(Saliency(model), x, batch_size=3)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_model_state_is_unchanged(mode):
    model, x, _ = make("mlp", torch.float32)
    model.train(mode == "train")
    model[0].weight.requires_grad_(False)
    model[2].weight.grad = torch.ones_like(model[2].weight)
    before = _state(model)
    for call in _all_calls(model, x):
        call()
        assert _same(before, _state(model))
    with torch.no_grad():  # works inside no_grad too
        Saliency(model).attribute(x, target=0)
    assert _same(before, _state(model))


class _Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_no_hooks_left_after_success_or_exception():
    model, x, _ = make("mlp", torch.float32)
    for call in _all_calls(model, x):
        call()
    assert _hooks(model) == 0
    broken = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), _Boom(), nn.Linear(4, 2))
    after = nn.Sequential(_Boom(), nn.Linear(5, 4), nn.ReLU())
    with pytest.raises(RuntimeError, match="boom"):
        LayerGradientXActivation(broken, "1").attribute(x, target=0)
    with pytest.raises(RuntimeError, match="boom"):
        NeuronGradient(after, "2").attribute(x, unit=0)
    with pytest.raises(RuntimeError, match="boom"):
        NeuronIntegratedGradients(after, "2").attribute(x, unit=0)
    assert _hooks(broken) == 0 and _hooks(after) == 0


def test_neuron_gradient_stops_at_the_layer():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), _Boom())
    x = torch.randn(3, 5)
    res = NeuronGradient(model, "1").attribute(x, unit=2)  # never reaches _Boom
    mask = (model[0](x)[:, 2] > 0).float().unsqueeze(1)
    close(res.values, mask * model[0].weight[2].detach(), torch.float32)


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    model, x, _ = make("mlp", torch.float32)
    sal, ig = Saliency(model), IntegratedGradients(model)
    with pytest.raises(ValueError, match="out of range"):
        sal.attribute(x, target=3)
    with pytest.raises(ValueError, match="out of range"):
        ig.attribute(x, target=[0, 1, 2, 3, 0, 1])
    with pytest.raises(ValueError, match="out of range"):
        Occlusion(model).attribute(x, target=-1, window=1)
    with pytest.raises(ValueError, match="one int per sample"):
        sal.attribute(x, target=[0, 1])
    with pytest.raises(ValueError, match="'pred'"):
        sal.attribute(x, target=None)
    with pytest.raises(ValueError, match="'pred'"):
        sal.attribute(x, target="predicted")
    bad = x.clone()
    bad[2, 1] = float("nan")
    for method in (sal, ig, SmoothGrad(model), FiniteDifference(model)):
        with pytest.raises(ValueError, match="non-finite"):
            method.attribute(bad, target=0)
    with pytest.raises(ValueError, match="non-finite"):
        FiniteDifference(lambda a: a).attribute(bad.numpy(), target=0)
    with pytest.raises(ValueError, match="shape"):
        sal.attribute(torch.randn(4, 6), target=0)
    with pytest.raises(ValueError, match="empty"):
        sal.attribute(torch.randn(0, 5), target=0)
    with pytest.raises(ValueError, match="baselines"):
        ig.attribute(x, target=0, baselines=torch.zeros(3))
    with pytest.raises(ValueError, match="baselines"):
        ig.attribute(x, target=0, baselines="mean")
    with pytest.raises(ValueError, match="unknown integration"):
        ig.attribute(x, target=0, method="simpson")
    with pytest.raises(ValueError, match="n_steps"):
        ig.attribute(x, target=0, n_steps=0)
    with pytest.raises(ValueError, match="feature_mask"):
        FeatureAblation(model).attribute(x, target=0, feature_mask=torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="larger than one sample"):
        Occlusion(model).attribute(x, target=0, window=6)
    with pytest.raises(ValueError, match="variant"):
        SmoothGrad(model).attribute(x, target=0, variant="smooth")
    with pytest.raises(ValueError, match="did you mean"):
        NeuronGradient(model, "fc1")
    with pytest.raises(ValueError, match="out of range"):
        NeuronGradient(model, "1").attribute(x, unit=16)
    with pytest.raises(ValueError, match="index"):
        NeuronGradient(cnn(torch.float32), "1").attribute(torch.randn(2, 1, 6, 6), unit=1)
    with pytest.raises(ValueError, match="internal_batch_size"):
        ig.attribute(x, target=0, internal_batch_size=0)
    with pytest.raises(TypeError, match="FiniteDifference"):
        Saliency(lambda a: a)
    dropout = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.5)).train()
    with pytest.raises(ValueError, match="eval"):
        Saliency(dropout).attribute(x, target=0)


# --------------------------------------------------------------------------- datasets


def test_attribute_dataset_matches_the_concatenated_computation():
    model, _, _ = make("several", torch.float64)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 7, (50,), generator=g)
    y[y == 4] = 5  # class 4 has no sample
    method = IntegratedGradients(model)
    full = method.attribute(X, target="pred", n_steps=8)
    res = attribute_dataset(method, (X, y), batch_size=16, n_steps=8)
    assert isinstance(res, DatasetAttribution) and res.grouped_by == "label"
    close(res.mean_abs, full.values.abs().mean(0), torch.float64)
    close(res.mean, full.values.mean(0), torch.float64)
    assert res.n_samples == 50 and res.n_classes == 7
    for c in range(7):
        sel = full.values[y == c]
        assert int(res.class_counts[c]) == sel.shape[0]
        ref = sel.abs().mean(0) if sel.shape[0] else torch.zeros(5, dtype=torch.float64)
        close(res.class_mean_abs[c], ref, torch.float64)
    # no labels: grouped by the predicted class
    unl = attribute_dataset(Saliency(model), X, batch_size=7, n_classes=9)
    pred = model(X).argmax(1)
    assert unl.grouped_by == "pred" and unl.n_classes == 9
    assert torch.equal(unl.class_counts, torch.bincount(pred, minlength=9))
    # target="label" explains the true class; a DataLoader works the same
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=11)
    lab = attribute_dataset(Saliency(model), loader, target="label")
    ref = Saliency(model).attribute(X, target=y).values.mean(0)
    close(lab.mean_abs, ref, torch.float64)
    assert lab.ranking()[0] == int(torch.argmax(ref))


def test_attribute_dataset_with_layer_and_neuron_methods_and_errors():
    model, x, _ = make("mlp", torch.float32, n=20)
    lay = attribute_dataset(LayerGradientXActivation(model, "3"), x, batch_size=6)
    assert lay.mean_abs.shape == (8,) and lay.layer == "3"
    neu = attribute_dataset(NeuronGradient(model, "1"), x, batch_size=6, unit=2)
    ref = NeuronGradient(model, "1").attribute(x, unit=2).values.abs().mean(0)
    close(neu.mean_abs, ref, torch.float32)
    with pytest.raises(ValueError, match="needs labels"):
        attribute_dataset(Saliency(model), x, target="label")
    with pytest.raises(ValueError, match="n_classes"):
        attribute_dataset(Saliency(model), (x, torch.full((20,), 5)), n_classes=3)


def test_masks_built_per_chunk_give_the_same_result(monkeypatch):
    import netxray.attribution._engine as nxa

    model, x, _ = make("cnn", torch.float64, n=3)
    fmask = torch.arange(36).view(1, 6, 6) // 5
    cached_occ = Occlusion(model).attribute(x, target=1, window=(1, 3, 3), stride=2)
    cached_fa = FeatureAblation(model).attribute(x, target=1, feature_mask=fmask)
    monkeypatch.setattr(nxa, "_AUTO_CHUNK_ELEMENTS", 40)  # masks no longer precomputed
    lazy_occ = Occlusion(model).attribute(x, target=1, window=(1, 3, 3), stride=2)
    lazy_fa = FeatureAblation(model).attribute(x, target=1, feature_mask=fmask)
    close(lazy_occ.values, cached_occ.values, torch.float64)
    close(lazy_fa.values, cached_fa.values, torch.float64)
    # an int stride steps the window's spatial dims only
    assert lazy_occ.params == {"window": [1, 3, 3], "stride": [1, 2, 2]}


def test_explain_by_name_and_finite_difference_over_a_dataset():
    from netxray.attribution import METHODS, explain

    model, x, _ = make("mlp", torch.float64)
    res = explain(model, x, method="saliency", abs=False)
    assert torch.equal(res.values, Saliency(model).attribute(x, target="pred", abs=False).values)
    assert set(METHODS) >= {"saliency", "integrated_gradients", "occlusion", "finite_difference"}
    with pytest.raises(ValueError, match="choose one of"):
        explain(model, x, method="lime")

    def proba(a: np.ndarray) -> np.ndarray:
        return torch.softmax(model(torch.from_numpy(a)), 1).detach().numpy()

    X = np.random.default_rng(0).normal(size=(30, 5))
    ds = attribute_dataset(FiniteDifference(proba), X, batch_size=8)
    ref = FiniteDifference(proba).attribute(X, target="pred")
    close(ds.mean_abs, ref.values.abs().mean(0), torch.float64)
    assert ds.grouped_by == "pred"
    # without n_classes, the classes seen: every sample here is predicted class 1
    assert torch.equal(ds.class_counts, torch.bincount(ref.target)) and ds.n_classes == 2


def test_dataset_attribution_round_trips(tmp_path):
    model, x, _ = make("mlp", torch.float32, n=20)
    res = attribute_dataset(IntegratedGradients(model), (x, torch.arange(20) % 3), n_steps=4)
    back = DatasetAttribution.load(res.save(tmp_path / "ds.npz"))
    assert torch.equal(back.class_mean_abs, res.class_mean_abs)
    assert back.params == {"n_steps": 4, "method": "gausslegendre"}
    assert (back.grouped_by, back.target, back.n_samples) == ("label", "pred", 20)
