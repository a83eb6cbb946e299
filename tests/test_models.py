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
