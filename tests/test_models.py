import numpy as np
import pytest
import torch
from torch import nn

import netxray


def test_names_and_shapes():
    m = netxray.mlp([4, 8, 6, 3], activation="tanh")
    assert [n for n, _ in m.named_children()] == ["fc1", "act1", "fc2", "act2", "fc3"]
    assert isinstance(m.act1, nn.Tanh)
    assert m(torch.randn(5, 4)).shape == (5, 3)


def test_lecture_init_reproduces_numpy_draws():
    m = netxray.mlp([2, 10, 2], init="lecture", seed=5, dtype=torch.float64)
    rng = np.random.default_rng(5)
    W1 = rng.normal(scale=0.4, size=(2, 10))
    W2 = rng.normal(scale=0.4, size=(10, 2))
    np.testing.assert_array_equal(m.fc1.weight.detach().numpy(), W1.T)
    np.testing.assert_array_equal(m.fc2.weight.detach().numpy(), W2.T)
    assert not m.fc1.bias.any() and m.fc1.weight.dtype == torch.float64


def test_he_init_has_the_right_scale_and_is_seeded():
    a = netxray.mlp([400, 300, 2], init="he", seed=1)
    b = netxray.mlp([400, 300, 2], init="he", seed=1)
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    std = a.fc1.weight.std().item()
    assert abs(std - (2 / 400) ** 0.5) < 0.02 * (2 / 400) ** 0.5 * 10


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        netxray.mlp([2, 2], activation="relu6")
    with pytest.raises(ValueError, match="at least an input and an output"):
        netxray.mlp([2])
    with pytest.raises(ValueError, match="unknown init"):
        netxray.mlp([2, 2], init="orthogonal")


def _reference_draws(sizes, init, seed):
    """The float32 draws by hand: one torch.Generator, each layer's weight (then bias for
    "torch") in order, with the closed-form std or bound."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=False):
        w = torch.empty(fan_out, fan_in)
        b = torch.zeros(fan_out)
        if init == "torch":
            bound = fan_in**-0.5
            w.uniform_(-bound, bound, generator=gen)
            b = torch.empty(fan_out).uniform_(-bound, bound, generator=gen)
        else:
            std = {"he": (2 / fan_in) ** 0.5, "xavier": (2 / (fan_in + fan_out)) ** 0.5,
                   "normal": 0.4}[init]
            w.normal_(0.0, std, generator=gen)
        out += [w, b]
    return out


@pytest.mark.parametrize("init", ["he", "xavier", "normal", "torch"])
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str
)
def test_same_seed_builds_the_same_network_in_every_dtype(init, dtype):
    """float64 used to draw from float64's own random stream: another network entirely."""
    sizes = (3, 8, 5, 2)
    m = netxray.mlp(sizes, init=init, seed=7, dtype=dtype)
    params = list(m.parameters())
    assert all(p.dtype == dtype for p in params)
    for got, want in zip(params, _reference_draws(sizes, init, 7), strict=True):
        assert torch.equal(got.detach(), want.to(dtype))


def test_lecture_init_is_the_same_network_in_float32():
    a = netxray.mlp([2, 10, 2], init="lecture", seed=5)
    b = netxray.mlp([2, 10, 2], init="lecture", seed=5, dtype=torch.float64)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p.detach(), q.detach().float())
