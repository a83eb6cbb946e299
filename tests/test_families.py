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
