"""Layer and neuron methods on the layers real models have: one call of a module that runs
twice (``"relu#1"``), and outputs followed by in-place ops (ResNet's ``ReLU(inplace=True)``,
``out += identity``).

References: each model's forward written out again by hand, with no hook and no in-place
op, every intermediate kept under its layer name, and ``torch.autograd`` on that; Captum's
``LayerGradientXActivation`` on the layers it can name (Captum's ``LayerIntegratedGradients``
raises the same in-place error netxray did). Float64 throughout, so the tolerance is 1e-10:
the same ops in the same order, up to summation order.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
from torch import nn

from netxray.attribution import (
    LayerGradient,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    NeuronGradient,
    NeuronIntegratedGradients,
)
from resnet_block import Block

TOL = 1e-10
N_STEPS = 8  # riemann_middle: the hand-written integral below uses the same points


@pytest.fixture(autouse=True)
def _quiet_captum():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="captum")
        yield


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b.to(a.dtype), atol=TOL, rtol=0)


class Twice(nn.Module):
    """QA's case: one ReLU module called twice, a linear layer between."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.relu, self.out = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu(self.fc(self.relu(x))))

    def parts(
        self, x: torch.Tensor, swap: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        seen: dict[str, torch.Tensor] = {}

        def at(name: str, t: torch.Tensor) -> torch.Tensor:
            seen[name] = (swap or {}).get(name, t)
            return seen[name]

        h = at("relu", torch.relu(x))
        h = at("relu#1", torch.relu(at("fc", self.fc(h))))
        return self.out(h), seen


class ResNetish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.block = Block(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
        with torch.no_grad():  # batch norm that is not the identity
            for bn in (self.block.bn1, self.block.bn2):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.3, 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.stem(x)))

    def parts(
        self, x: torch.Tensor, swap: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The same forward written out: no hook, no in-place op; ``swap`` replaces one
        layer's output (as the attribution's hook does)."""
        b, seen = self.block, {}

        def at(name: str, t: torch.Tensor) -> torch.Tensor:
            seen[name] = (swap or {}).get(name, t)
            return seen[name]

        s = at("stem", self.stem(x))
        a = at("block.bn1", b.bn1(b.conv1(s)))
        r = at("block.relu", torch.relu(a))
        c = at("block.bn2", b.bn2(at("block.conv2", b.conv2(r))))
        r1 = at("block.relu#1", torch.relu(c + s))
        return self.head(r1), seen


def resnetish() -> tuple[ResNetish, torch.Tensor, torch.Tensor]:
    model = ResNetish().double().eval()
    x = torch.randn(5, 2, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return model, x, torch.tensor([0, 1, 2, 0, 1])


def twice() -> tuple[Twice, torch.Tensor, torch.Tensor]:
    model = Twice().double().eval()
    x = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    return model, x, torch.arange(8) % 3


def _selected(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return out.gather(1, t.unsqueeze(1)).sum()


def _integral(f: Callable[[torch.Tensor], torch.Tensor], end: torch.Tensor, start: torch.Tensor):
    """Integrated gradients by hand, riemann_middle: (end - start) x mean of df at the
    midpoints of N_STEPS equal steps."""
    total = torch.zeros_like(end)
    for k in range(N_STEPS):
        h = (start + (k + 0.5) / N_STEPS * (end - start)).requires_grad_(True)
        total += torch.autograd.grad(f(h), h)[0]
    return total / N_STEPS * (end - start)


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- one call of several


def _unit_reference(model, x: torch.Tensor, name: str, unit: tuple[int, ...]) -> torch.Tensor:
    xg = x.clone().requires_grad_(True)
    act = model.parts(xg)[1][name]
    return torch.autograd.grad(act[(slice(None), *unit)].sum(), xg)[0]


@pytest.mark.parametrize(
    ("build", "calls", "unit"),
    [(twice, ("relu", "relu#1"), (0,)), (resnetish, ("block.relu", "block.relu#1"), (2, 1, 3))],
)
def test_neuron_methods_explain_the_call_named(build, calls, unit):
    model, x, _ = build()
    before = _state(model)
    grads = {}
    for name in calls:
        ng = NeuronGradient(model, name).attribute(x, unit=unit if len(unit) > 1 else unit[0])
        close(ng.values, _unit_reference(model, x, name, unit))
        assert ng.layer == name
        grads[name] = ng.values
        nig = NeuronIntegratedGradients(model, name).attribute(
            x, unit=unit, baselines=0.1, n_steps=N_STEPS, method="riemann_middle",
            internal_batch_size=7,
        )  # fmt: skip
        base = torch.full_like(x, 0.1)

        def unit_of(h: torch.Tensor, name: str = name) -> torch.Tensor:
            return model.parts(h)[1][name][(slice(None), *unit)].sum()

        close(nig.values, _integral(unit_of, x, base))
        with torch.no_grad():
            u = (model.parts(x)[1][name] - model.parts(base)[1][name])[(slice(None), *unit)]
        close(nig.delta, nig.values.flatten(1).sum(1) - u)
    # the calls differ, so the test would catch call 0 given for call 1
    assert not torch.allclose(grads[calls[0]], grads[calls[1]])
    assert _hooks(model) == 0
    assert all(torch.equal(v, _state(model)[k]) for k, v in before.items())


@pytest.mark.parametrize(
    ("build", "calls"),
    [(twice, ("relu", "relu#1")), (resnetish, ("block.relu", "block.relu#1"))],
)
def test_layer_methods_explain_the_call_named(build, calls):
    _check_layer_methods(*build(), calls)


# --------------------------------------------------------------------------- in-place ops after


def test_layer_methods_on_outputs_changed_in_place_afterwards():
    """``bn1`` is followed by ``ReLU(inplace=True)``, ``bn2`` by ``out += identity``, the
    stem's output is the identity, and the ReLU is itself in-place: the attribution is to
    each output as the layer produced it."""
    _check_layer_methods(*resnetish(), ("stem", "block.bn1", "block.bn2", "block.conv2"))


def _check_layer_methods(model, x: torch.Tensor, t: torch.Tensor, names) -> None:
    before = _state(model)
    flags = [p.requires_grad for p in model.parameters()]
    base = torch.full_like(x, -0.2)
    with torch.no_grad():
        at_base = model.parts(base)[1]
    for name in names:
        xg = x.clone().requires_grad_(True)
        out, seen = model.parts(xg)
        act = seen[name]
        grad = torch.autograd.grad(_selected(out, t), act)[0]
        lg = LayerGradient(model, name).attribute(x, target=t)
        close(lg.values, grad)
        close(LayerGradientXActivation(model, name).attribute(x, target=t).values, act * grad)
        lig = LayerIntegratedGradients(model, name).attribute(
            x, target=t, baselines=-0.2, n_steps=N_STEPS, method="riemann_middle",
            internal_batch_size=6,
        )  # fmt: skip

        def target_of(h: torch.Tensor, name: str = name) -> torch.Tensor:
            return _selected(model.parts(x, swap={name: h})[0], t)

        close(lig.values, _integral(target_of, act.detach(), at_base[name]))
        with torch.no_grad():
            f = model(x).gather(1, t[:, None])[:, 0] - model(base).gather(1, t[:, None])[:, 0]
        close(lig.delta, lig.values.flatten(1).sum(1) - f)
        assert lg.layer == lig.layer == name
    assert _hooks(model) == 0 and not model.training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(v, _state(model)[k]) for k, v in before.items())


def test_captum_agrees_on_layers_followed_by_in_place_ops():
    """Captum (0.9) clones the layer's output in its hook too. It cannot name one call of a
    shared module (its hook sees every call), so the shared ReLU is checked above only."""
    ca = pytest.importorskip("captum.attr")
    model, x, t = resnetish()
    for name in ("stem", "block.bn1", "block.bn2", "block.conv2"):
        module = dict(model.named_modules())[name]
        ref = ca.LayerGradientXActivation(model, module, multiply_by_inputs=False)
        close(LayerGradient(model, name).attribute(x, target=t).values, ref.attribute(x, target=t))
        ref = ca.LayerGradientXActivation(model, module)
        close(
            LayerGradientXActivation(model, name).attribute(x, target=t).values,
            ref.attribute(x, target=t),
        )


def test_qa_sequential_with_an_in_place_relu():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(64, 2)
    ).double().eval()  # fmt: skip
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    a = model[1](model[0](x)).requires_grad_(True)
    out = model[4](model[3](torch.relu(a)))
    grad = torch.autograd.grad(out[:, 0].sum(), a)[0]
    close(LayerGradient(model, "1").attribute(x, target=0).values, grad)
    close(LayerGradientXActivation(model, "1").attribute(x, target=0).values, grad * a.detach())
    assert _hooks(model) == 0


# --------------------------------------------------------------------------- errors


def test_a_call_that_never_runs_is_refused_naming_the_calls_there_are():
    model, x, t = resnetish()
    calls = [
        lambda: NeuronGradient(model, "block.relu#2").attribute(x, unit=(0, 0, 0)),
        lambda: NeuronIntegratedGradients(model, "block.relu#2").attribute(x, unit=(0, 0, 0)),
        lambda: LayerGradient(model, "block.relu#2").attribute(x, target=t),
        lambda: LayerIntegratedGradients(model, "block.relu#2").attribute(x, target=t),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"ran 2 time\(s\).*'block.relu', 'block.relu#1'"):
            call()
    spare, xs, _ = twice()
    spare.unused = nn.ReLU()
    with pytest.raises(ValueError, match="'unused' did not run"):
        LayerGradient(spare, "unused").attribute(xs, target=0)
    with pytest.raises(ValueError, match="'unused' did not run"):
        NeuronGradient(spare, "unused").attribute(xs, unit=0)
    with pytest.raises(ValueError, match="first call of a module is named by the module"):
        NeuronGradient(model, "block.relu#0")
    assert _hooks(model) == 0 and _hooks(spare) == 0
