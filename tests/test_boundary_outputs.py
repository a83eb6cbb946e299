"""Decision surfaces of models that output probabilities, dicts, HF outputs or bfloat16, and
``boundary_evolution``'s accuracy for labels of other codings, against the model by hand."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from netxray._probabilities import (
    LOG_PROBABILITIES,
    LOGITS,
    PROBABILITIES,
    to_probabilities,
    watch_head,
)
from netxray._warnings import NetxrayWarning
from netxray.boundary import boundary_evolution, decision_boundary, grid_warp, unit_maps

X = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)


def body(k: int, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, k))


def on_grid(model: nn.Module, g, dtype=torch.float32) -> torch.Tensor:
    uv = torch.tensor(np.column_stack([g.xx.ravel(), g.yy.ravel()]), dtype=dtype)
    with torch.no_grad():
        return model(uv)


class Squeezed(nn.Module):
    """A binary head that returns p(class 1) as ``(batch,)``: a view of its Sigmoid's output."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.sig = body(1), nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sig(self.body(x)).squeeze(1)


class FunctionalSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = body(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.body(x), dim=1)


def test_a_sigmoid_head_is_not_squashed_twice() -> None:
    for model in (nn.Sequential(body(1), nn.Sigmoid()).eval(), Squeezed().eval()):
        g = decision_boundary(model, X, resolution=20)
        p = on_grid(model, g).reshape(-1).numpy()  # the model's own p(class 1)
        np.testing.assert_allclose(g.probs[..., 1].ravel(), p, atol=1e-6)
        np.testing.assert_allclose(g.probs[..., 0].ravel(), 1 - p, atol=1e-6)
        assert 0 < g.predictions.mean() < 1  # the plane is not all class 1


@pytest.mark.parametrize("head,exp", [(nn.Softmax(dim=1), False), (nn.LogSoftmax(dim=1), True)])
def test_a_softmax_or_log_softmax_head_gives_its_own_probabilities(head, exp) -> None:
    model = nn.Sequential(body(3), head).eval()
    g = decision_boundary(model, X, resolution=20)
    q = on_grid(model, g)
    q = (q.exp() if exp else q).numpy()
    np.testing.assert_allclose(g.probs.reshape(-1, 3), q, atol=1e-6)


def test_a_softmax_in_forward_is_recognised_by_its_values() -> None:
    model = FunctionalSoftmax().eval()
    g = decision_boundary(model, X, resolution=20)
    np.testing.assert_allclose(g.probs.reshape(-1, 3), on_grid(model, g).numpy(), atol=1e-6)


def test_a_logit_model_still_gets_softmax_and_sigmoid() -> None:
    for k in (1, 3):
        model = body(k).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("error", NetxrayWarning)  # its logits span < 0: no warning
            g = decision_boundary(model, X * 5, resolution=12)
        z = on_grid(model, g).double()
        ref = torch.softmax(z, 1) if k > 1 else torch.cat([1 - z.sigmoid(), z.sigmoid()], 1)
        np.testing.assert_allclose(g.probs.reshape(-1, 2 if k == 1 else 3), ref.numpy(), atol=1e-6)


def test_a_single_output_in_0_1_with_no_sigmoid_module_warns() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.body(x))

    with pytest.warns(NetxrayWarning, match=r"nn.Sigmoid\(\) module"):
        decision_boundary(Functional().eval(), X, resolution=6)


def test_small_logits_on_the_probed_samples_do_not_warn() -> None:
    """The first 8 samples' logits lie in [0, 1], the grid's do not: a logit model."""
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.1, 0.0]]))
        model.bias.fill_(0.5)
    Xs = X.copy()
    Xs[:8] *= 0.1  # near 0: logits ~0.5
    Xs[8:, 0] *= 20  # logits from about -4 to 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", NetxrayWarning)
        g = decision_boundary(model.eval(), Xs, resolution=12)
    z = on_grid(model, g).double()
    np.testing.assert_allclose(g.probs[..., 1].ravel(), z.sigmoid().ravel().numpy(), atol=1e-6)


def test_watch_head_and_to_probabilities_by_closed_form() -> None:
    z = torch.tensor([[0.3, -1.2, 2.0], [1.0, 0.0, -0.5]])
    model = nn.Sequential(nn.Identity(), nn.Softmax(dim=1))
    with watch_head(model) as head:
        out = model(z)
    assert head.kind(out) == PROBABILITIES and head.kind(z) == LOGITS
    assert not model[1]._forward_hooks  # removed on exit
    e = np.exp(z.numpy())
    np.testing.assert_allclose(to_probabilities(z, LOGITS), e / e.sum(1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(to_probabilities(z.log_softmax(1), LOG_PROBABILITIES),
                               e / e.sum(1, keepdims=True), atol=1e-6)
    p = torch.tensor([0.2, 0.9])
    np.testing.assert_allclose(to_probabilities(p, PROBABILITIES), [[0.8, 0.2], [0.1, 0.9]],
                               atol=1e-7)
    s = torch.tensor([[0.0], [np.log(3.0)]])
    np.testing.assert_allclose(to_probabilities(s, LOGITS), [[0.5, 0.5], [0.25, 0.75]], atol=1e-6)


def test_boundary_evolution_accuracy_of_a_sigmoid_head() -> None:
    model = nn.Sequential(body(1), nn.Sigmoid()).eval()
    with torch.no_grad():  # about half the samples on each side
        model[0][2].bias -= model[0](torch.as_tensor(X)).median() + 1e-3
        pred = (model(torch.as_tensor(X))[:, 0] > 0.5).numpy()
    y = pred.astype(np.int64)
    y[:5] = 1 - y[:5]  # labels the model gets right but for 5
    ev = boundary_evolution(model, {0: copy.deepcopy(model.state_dict())}, X, y, resolution=6)
    assert ev.accuracy[0] == pytest.approx((pred == y).mean())
    assert (pred == y).mean() != y.mean()  # a second sigmoid would predict class 1 everywhere


class DictOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = body(3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": self.body[1](self.body[0](x)), "logits": self.body(x)}


class HFOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = body(3)

    def forward(self, x: torch.Tensor):
        from transformers.modeling_outputs import SequenceClassifierOutput

        return SequenceClassifierOutput(loss=torch.tensor(0.5), logits=self.body(x))


@pytest.mark.parametrize("cls", [DictOut, HFOut])
def test_dict_and_hf_outputs_give_the_surface_of_their_logits(cls) -> None:
    model = cls().eval()
    g = decision_boundary(model, X, resolution=10)
    ref = torch.softmax(on_grid(model.body, g), 1).numpy()
    np.testing.assert_allclose(g.probs.reshape(-1, 3), ref, atol=1e-6)
    ev = boundary_evolution(model, {0: model.state_dict()}, X, resolution=10)
    np.testing.assert_allclose(ev.probs[0], g.probs, atol=1e-6)


def test_a_bfloat16_model_runs_and_matches_itself_in_bfloat16() -> None:
    model = body(3).to(torch.bfloat16).eval()
    g = decision_boundary(model, X, resolution=10)
    ref = torch.softmax(on_grid(model, g, torch.bfloat16).float(), 1).numpy()
    np.testing.assert_allclose(g.probs.reshape(-1, 3), ref, atol=1e-6)
    um = unit_maps(model, X, resolution=6)
    with torch.no_grad():
        h = model[1](model[0](on_grid(nn.Identity(), um, torch.bfloat16))).float().numpy()
    np.testing.assert_allclose(um.maps["1"].reshape(6, -1).T, h, atol=1e-6)
    gw = grid_warp(nn.Sequential(nn.Linear(2, 2), nn.Tanh()).to(torch.bfloat16).eval(), X,
                   n_lines=3, points_per_line=4)
    assert gw.points["1"].shape == (50, 2) and np.isfinite(gw.points["1"]).all()


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, dict, np.ndarray, float]:
    model = body(2)
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int64)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.as_tensor(X)), torch.as_tensor(y)).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(X)).argmax(1).numpy()
    return model, {0: copy.deepcopy(model.state_dict())}, y, float((pred == y).mean())


def test_evolution_accuracy_takes_class_indices_in_any_integer_or_whole_float_form(trained):
    model, ck, y, acc = trained
    assert 0.7 < acc < 1.0
    for labels in (y, y.astype(np.float32), y.astype(bool), torch.as_tensor(y), y[:, None]):
        ev = boundary_evolution(model, ck, X, labels, resolution=5)
        assert ev.accuracy[0] == pytest.approx(acc)


@pytest.mark.parametrize("code,match", [
    (lambda y: np.where(y == 1, 1, -1), "label -1 but the model outputs 2 classes"),
    (lambda y: y + 1, "label 2 but the model outputs 2 classes"),
    (lambda y: np.array(["neg", "pos"])[y], "class indices"),
    (lambda y: y + 0.5, "class indices"),
])
def test_evolution_refuses_labels_of_another_coding(trained, code, match) -> None:
    model, ck, y, _ = trained
    with pytest.raises(ValueError, match=match):
        boundary_evolution(model, ck, X, code(y), resolution=5)


def test_predicted_classes_of_one_logit_one_probability_and_several_logits() -> None:
    """analyze's train_pred took argmax(1): one column always said class 0."""
    from netxray._probabilities import predicted_classes

    x = torch.tensor(X)
    one = body(1)
    with torch.no_grad():
        z = one(x)[:, 0].numpy()
        three = body(3, seed=1)
        z3 = three(x).numpy()
    assert 0 < (z > 0).sum() < len(z)  # both classes occur: the test can tell
    np.testing.assert_array_equal(predicted_classes(one, x).numpy(), (z > 0).astype(np.int64))
    np.testing.assert_array_equal(predicted_classes(nn.Sequential(one, nn.Sigmoid()), x).numpy(),
                                  (z > 0).astype(np.int64))  # p > 0.5 exactly where z > 0
    np.testing.assert_array_equal(predicted_classes(Squeezed(), x).numpy(),
                                  (Squeezed().body(x)[:, 0] > 0).long().numpy())
    np.testing.assert_array_equal(predicted_classes(three, x).numpy(), z3.argmax(1))
