"""One definition of activation families, pinned for every torch activation class."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch import nn

import netxray.boundary
import netxray.stats
from netxray.families import (
    DEFAULT_HIST_RANGES,
    FAMILIES,
    activation_family,
    saturation_band,
)

# Every nn.Module class in torch.nn.modules.activation, with its family. A torch release
# that adds a class fails test_every_torch_activation_class_is_pinned: decide its family
# here (and in netxray.families if it can die or saturate).
PINNED: dict[str, str] = {
    "ReLU": "relu",
    "ReLU6": "relu",
    "Threshold": "relu",
    "LeakyReLU": "rectifier",
    "PReLU": "rectifier",
    "RReLU": "rectifier",
    "ELU": "rectifier",
    "SELU": "rectifier",
    "CELU": "rectifier",
    "GELU": "rectifier",
    "SiLU": "rectifier",
    "Mish": "rectifier",
    "Softplus": "rectifier",
    "Hardswish": "rectifier",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Hardsigmoid": "sigmoid",
    "GLU": "linear",
    "Hardshrink": "linear",
    "Hardtanh": "tanh",
    "LogSigmoid": "linear",
    "LogSoftmax": "linear",
    "MultiheadAttention": "linear",
    "Softmax": "linear",
    "Softmax2d": "linear",
    "Softmin": "linear",
    "Softshrink": "linear",
    "Softsign": "tanh",
    "Tanhshrink": "linear",
}

_ARGS = {"Threshold": (0.0, 0.0), "MultiheadAttention": (4, 1)}


def _torch_activation_classes() -> dict[str, type[nn.Module]]:
    mod = torch.nn.modules.activation
    return {
        name: cls
        for name, cls in inspect.getmembers(mod, inspect.isclass)
        if issubclass(cls, nn.Module) and cls.__module__ == mod.__name__
    }


def test_every_torch_activation_class_is_pinned():
    found = set(_torch_activation_classes())
    assert found - set(PINNED) == set(), f"new torch activations, pin their family: {found - set(PINNED)}"
    assert set(PINNED) - found == set(), f"pinned but gone from torch: {set(PINNED) - found}"


@pytest.mark.parametrize("name", sorted(PINNED))
def test_family_of_each_torch_activation(name):
    cls = _torch_activation_classes()[name]
    assert activation_family(cls(*_ARGS.get(name, ()))) == PINNED[name]


def test_non_activations_and_subclasses():
    class MyReLU(nn.ReLU):
        pass

    assert activation_family(MyReLU()) == "relu"
    assert activation_family(nn.Linear(2, 2)) == "linear"
    assert activation_family(nn.Conv2d(1, 1, 3)) == "linear"
    assert activation_family(nn.Identity()) == "linear"


def test_every_family_has_a_histogram_range_and_saturation_only_where_bounded():
    assert set(DEFAULT_HIST_RANGES) == set(FAMILIES)
    assert set(PINNED.values()) == set(FAMILIES)
    for lo, hi in DEFAULT_HIST_RANGES.values():
        assert lo < hi
    bands = {f: saturation_band(f) for f in FAMILIES}
    assert bands == {
        "relu": None,
        "rectifier": None,
        "tanh": (-0.99, 0.99),
        "sigmoid": (0.01, 0.99),
        "linear": None,
    }


def test_stats_reexports_the_one_definition():
    import netxray.families as fam

    assert netxray.stats.RELU_FAMILY is fam.RELU_FAMILY
    assert netxray.stats.RECTIFIER_FAMILY is fam.RECTIFIER_FAMILY
    assert netxray.stats.activation_family is fam.activation_family
    assert netxray.stats.saturation_band is fam.saturation_band
    assert netxray.stats.DEFAULT_HIST_RANGES is fam.DEFAULT_HIST_RANGES


@pytest.mark.parametrize("act", [nn.ReLU, nn.ReLU6, lambda: nn.Threshold(0.0, 0.0)])
def test_stats_and_unit_maps_agree_on_dead_units(act):
    """A unit with a large negative bias never fires: both collect_stats and unit_maps call
    it dead, for every ReLU-family class (unit_maps used to leave Threshold out)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), act()).double().eval()
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([10.0, -100.0, 10.0]))
    X = torch.randn(50, 2, dtype=torch.float64)
    s = netxray.stats.collect_stats(model, X, layers="1")["1"]
    maps = netxray.boundary.unit_maps(model, X, layers="1", resolution=4)
    assert s.family == "relu"
    expected = np.array([False, True, False])
    np.testing.assert_array_equal((s.frac_active == 0) & (s.count > 0), expected)
    np.testing.assert_array_equal(maps.dead["1"], expected)


def test_unit_maps_marks_no_dead_units_outside_the_relu_family():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU()).double().eval()
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([10.0, -100.0, 10.0]))
    X = torch.randn(50, 2, dtype=torch.float64)
    maps = netxray.boundary.unit_maps(model, X, layers="1", resolution=4)
    np.testing.assert_array_equal(maps.dead["1"], np.zeros(3, dtype=bool))


def test_hardtanh_is_tanh_only_with_its_default_bounds():
    assert activation_family(nn.Hardtanh()) == "tanh"
    assert activation_family(nn.Hardtanh(-2.0, 2.0)) == "linear"  # the tanh band is +-1
    assert activation_family(nn.ReLU6()) == "relu"  # a Hardtanh(0, 6) subclass


def test_a_softsign_layer_pushed_to_its_bounds_is_reported_saturated():
    import netxray

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Softsign(), nn.Linear(8, 2)).eval()
    with torch.no_grad():
        model[0].weight.mul_(1e4)  # |x| ~ 1e4: softsign(x) ~ +-0.9999, gradient ~ 1e-8
    report = netxray.diagnose(model, (torch.randn(64, 4), torch.randint(0, 2, (64,))))
    assert "saturated_units" in report.kinds


# ------------------------------------------------------------------ classes of other libraries


def _foreign(name: str) -> nn.Module:
    """A parameterless leaf of another library, called ``name``: found only by its name."""
    cls = type(name, (nn.Module,), {"forward": lambda self, x: x, "__module__": "elsewhere"})
    return cls()


#: By name alone a Threshold's value and threshold are unknown: no claims.
_NAME_ONLY = {"Threshold": "linear"}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_a_foreign_class_named_like_a_torch_activation_gets_its_family(name):
    """The reference is torch's own class, pinned by type: "RELU" used to be a rectifier
    (``ELU`` inside ``RELU``), "LogSigmoid" a sigmoid, "Tanhshrink" a tanh."""
    assert activation_family(_foreign(name)) == _NAME_ONLY.get(name, PINNED[name])
    for variant in (name.upper(), name.lower()):
        if name.lower() in ("relu", "gelu", "silu", "elu", "selu", "celu", "tanh", "sigmoid"):
            assert activation_family(_foreign(variant)) == PINNED[name], variant


@pytest.mark.parametrize(
    ("name", "family"),
    [("RELU", "relu"), ("SquaredReLU", "relu"), ("ReLUSquared", "relu"), ("relu_squared", "relu"),
     ("ReLU6", "relu"), ("LeakyRELU", "rectifier"), ("leaky_relu", "rectifier"),
     ("PReLU", "rectifier"), ("FastGELU", "rectifier"), ("gelu_new", "rectifier"),
     ("HardSwish", "rectifier"), ("HardTanh", "tanh"), ("HardSigmoid", "sigmoid"),
     ("log_sigmoid", "linear"), ("ParallelUnit", "linear"), ("Relux", "linear"),
     ("Tanhshrink", "linear"), ("Sigmoidal", "linear"), ("Sin", "linear")],
)
def test_names_are_matched_as_whole_words(name, family):
    assert activation_family(_foreign(name)) == family


# HF's activation classes (transformers.activations.ACT2CLS), decided from their formulas.
HF_FAMILIES: dict[str, tuple[str, bool]] = {  # class name: (family, smooth gate)
    "GELUActivation": ("rectifier", True),
    "ClippedGELUActivation": ("rectifier", True),
    "FastGELUActivation": ("rectifier", True),
    "NewGELUActivation": ("rectifier", True),
    "GELUTanh": ("rectifier", True),
    "AccurateGELUActivation": ("rectifier", True),
    "QuickGELUActivation": ("rectifier", True),
    "SiLUActivation": ("rectifier", True),
    "MishActivation": ("rectifier", True),
    "ReLUSquaredActivation": ("relu", False),
    "SqrtSoftplusActivation": ("rectifier", False),
    "LaplaceActivation": ("linear", False),
    "LinearActivation": ("linear", False),
    "XIELUActivation": ("linear", False),  # trainable parameters: not matched by name
}


def _hf_activations() -> dict[str, nn.Module]:
    from transformers.activations import ACT2CLS

    out: dict[str, nn.Module] = {}
    for entry in ACT2CLS.values():
        cls, kwargs = entry if isinstance(entry, tuple) else (entry, {})
        if not cls.__module__.startswith("torch."):
            out[cls.__name__] = cls(**kwargs)
    return out


def test_every_hf_activation_class_gets_its_family():
    from netxray.families import is_smooth_gate

    mods = _hf_activations()
    assert set(mods) == set(HF_FAMILIES), "a transformers release changed ACT2CLS: decide here"
    for name, mod in mods.items():
        assert (activation_family(mod), is_smooth_gate(name)) == HF_FAMILIES[name], name


def test_smooth_gates_by_whole_words():
    from netxray.families import is_smooth_gate

    gates = ["GELU", "SiLU", "Mish", "Hardswish", "HardSwish", "Swish", "gelu_new", "QuickGELU"]
    others = ["ReLU", "RELU", "LeakyReLU", "Softplus", "Sigmoid", "ELU", "Hardsigmoid",
              "Angelus", "Silurian", "Mishmash"]
    assert [n for n in gates if not is_smooth_gate(n)] == []
    assert [n for n in others if is_smooth_gate(n)] == []


# ------------------------------------------------------------------ Threshold


def _threshold_net(act: nn.Module) -> tuple[nn.Sequential, torch.Tensor]:
    """Unit 0 always far below any threshold, unit 1 in (-1, 0), unit 2 spread around 0."""
    model = nn.Sequential(nn.Linear(1, 3), act).double().eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0], [0.4], [3.0]]))
        model[0].bias.copy_(torch.tensor([-100.0, -0.5, 0.0]))
    X = torch.linspace(-1, 1, 200, dtype=torch.float64).reshape(-1, 1)
    return model, X


def _no_gradient_units(model: nn.Sequential, X: torch.Tensor) -> set[int]:
    """The reference: units whose output passes no gradient on any input (autograd)."""
    z = model[0](X).detach().requires_grad_(True)
    model[1](z).sum().backward()
    return {int(u) for u in torch.nonzero((z.grad == 0).all(0)).flatten()}


@pytest.mark.parametrize(
    ("threshold", "value", "family"),
    [(0.0, 0.0, "relu"), (0.5, 0.0, "relu"), (0.5, 20.0, "linear"), (-1.0, -1.0, "linear"),
     (-1.0, 0.0, "linear")],
)
def test_threshold_is_relu_family_only_where_never_positive_means_dead(threshold, value, family):
    """``Threshold(0.5, 20)`` outputs 20 > 0 below 0.5 (never "dead" by the > 0 rule);
    ``Threshold(-1, -1)`` outputs negatives while passing gradient (live, yet never > 0)."""
    import netxray

    model, X = _threshold_net(nn.Threshold(threshold, value))
    assert activation_family(model[1]) == family
    report = netxray.diagnose(model, X)
    dead = {u for f in report.by_kind("dead_units") for u in f.units}
    constant = {u for f in report.by_kind("constant_units") if f.layer == "1" for u in f.units}
    frozen = _no_gradient_units(model, X)
    assert dead <= frozen  # no live unit is ever called dead
    assert frozen <= dead | constant  # and every frozen unit is reported, one way or the other
    if family == "relu":
        assert dead == frozen
