import numpy as np
import pytest
import torch
from torch import nn

import netxray
from netxray.capture import default_layers, iter_batches, record, select_layers


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Linear(3, 5), nn.ReLU()),
        nn.Sequential(nn.Linear(5, 4), nn.Tanh()),
        nn.Linear(4, 2),
    )


def test_select_by_name_glob_type_predicate():
    m = make_model()
    assert list(select_layers(m, "0.1")) == ["0.1"]
    assert list(select_layers(m, "*.1")) == ["0.1", "1.1"]
    assert list(select_layers(m, nn.Linear)) == ["0.0", "1.0", "2"]
    assert list(select_layers(m, lambda n, mod: n.startswith("1"))) == ["1", "1.0", "1.1"]
    # a list of specs keeps named_modules order and removes duplicates
    assert list(select_layers(m, ["1.1", "0.1", nn.ReLU])) == ["0.1", "1.1"]


def test_default_layers_are_activations_else_leaves():
    assert list(default_layers(make_model())) == ["0.1", "1.1"]
    lin = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    assert list(default_layers(lin)) == ["0", "1"]


def test_unknown_name_lists_close_matches():
    m = nn.Sequential()
    m.add_module("fc1", nn.Linear(2, 2))
    m.add_module("act1", nn.ReLU())
    m.add_module("fc2", nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"layer 'fc3' not found; did you mean 'fc2' or 'fc1'\? Layers: fc1, act1, fc2"):
        select_layers(m, "fc3")
    with pytest.raises(ValueError, match="not found"):
        select_layers(m, "enc*")
    with pytest.raises(ValueError, match="no Conv2d"):
        select_layers(m, nn.Conv2d)
    with pytest.raises(ValueError, match="did you mean 'fc1'"):
        select_layers(m, "FC1")
    with pytest.raises(TypeError, match="cannot select layers with 3"):
        select_layers(m, 3)
    with record(m, "act1") as rec:
        m(torch.randn(1, 2))
    with pytest.raises(ValueError, match="'fc1' not found in this recording"):
        rec["fc1"]


def test_record_matches_manual_forward():
    m = make_model()
    x = torch.randn(7, 3)
    with record(m, ["0.1", "1.1"]) as rec:
        m(x[:4])
        m(x[4:])
    expected_relu = torch.relu(m[0][0](x))
    expected_tanh = torch.tanh(m[1][0](expected_relu))
    torch.testing.assert_close(rec["0.1"], expected_relu, rtol=0, atol=0)
    torch.testing.assert_close(rec["1.1"], expected_tanh, rtol=0, atol=0)
    assert [c.shape[0] for c in rec.calls("0.1")] == [4, 3]
    assert not rec["0.1"].requires_grad


def test_record_without_detach_lets_gradients_flow():
    m = make_model()
    x = torch.randn(5, 3)
    with record(m, "1.1", detach=False) as rec:
        out = m(x)
    (g,) = torch.autograd.grad(out.sum(), rec["1.1"])
    torch.testing.assert_close(g, m[2].weight.sum(0).expand(5, 4))


def test_no_hooks_left_after_success_and_after_exception(hook_count):
    m = make_model()
    with record(m, nn.Linear):
        m(torch.randn(2, 3))
    assert hook_count(m) == 0
    with pytest.raises(RuntimeError):
        with record(m, nn.Linear):
            m(torch.randn(2, 7))  # wrong width: the forward pass raises inside the block
    assert hook_count(m) == 0


def test_activations_over_pairs_loaders_and_arrays():
    m = make_model().eval()
    X = torch.randn(50, 3)
    y = torch.randint(0, 2, (50,))
    a = netxray.activations(m, (X, y), batch_size=16)
    torch.testing.assert_close(a["0.1"], torch.relu(m[0][0](X)).detach())
    torch.testing.assert_close(a.outputs, m(X).detach())
    assert torch.equal(a.targets, y)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=13)
    b = netxray.activations(m, loader)
    torch.testing.assert_close(a["1.1"], b["1.1"])
    c = netxray.activations(m, X.numpy())
    assert c.targets is None and c.flat("1.1").shape == (50, 4)


def test_activations_keep_model_state(hook_count):
    m = make_model()
    m.eval()
    m[0][0].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    netxray.activations(m, torch.randn(10, 3))
    assert not m.training and not m[0][0].weight.requires_grad and m[1][0].weight.requires_grad
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert hook_count(m) == 0


def test_activations_refuses_dropout_model_in_training_mode():
    m = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.ReLU())
    with pytest.raises(ValueError, match=r"training mode.*model.eval\(\)"):
        netxray.activations(m, torch.randn(4, 3))
    a = netxray.activations(m, torch.randn(4, 3), allow_train=True)
    assert a["2"].shape == (4, 4)
    assert m.training


def test_activations_reject_bad_data():
    m = make_model().eval()
    with pytest.raises(ValueError, match="non-finite"):
        netxray.activations(m, torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="empty"):
        netxray.activations(m, torch.empty(0, 3))
    with pytest.raises(ValueError, match="differ in length"):
        netxray.activations(m, (torch.randn(4, 3), torch.zeros(3)))
    with pytest.raises(TypeError, match="cannot read data"):
        netxray.activations(m, 42)
    with pytest.raises(ValueError, match="no batches"):
        netxray.activations(m, [])


def test_layer_that_never_runs_is_reported():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(2, 2)
            self.unused = nn.ReLU()

        def forward(self, x):
            return self.used(x)

    with pytest.raises(ValueError, match="never ran"):
        netxray.activations(Skips(), torch.randn(3, 2), layers="unused")


def test_iter_batches_dict_batches_and_tuple_outputs():
    batches = [{"x": torch.ones(2, 3), "y": torch.zeros(2)}, {"input": torch.ones(1, 3)}]
    got = list(iter_batches(batches))
    assert got[0][0].shape == (2, 3) and got[0][1].shape == (2,) and got[1][1] is None

    class LSTMNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(3, 4, batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0][:, -1]

    net = LSTMNet().eval()
    with record(net, "rnn") as rec:
        net(torch.randn(2, 5, 3))
    assert rec["rnn"].shape == (2, 5, 4)


def test_activations_save_and_load_roundtrip(tmp_path):
    m = make_model().eval()
    a = netxray.activations(m, (torch.randn(6, 3), torch.arange(6) % 2))
    path = a.save(tmp_path / "acts.npz")
    b = netxray.Activations.load(path)
    for k in a.layers:
        assert torch.equal(a.layers[k], b.layers[k])
    assert torch.equal(a.targets, b.targets)
    np.testing.assert_array_equal(a.outputs.numpy(), b.outputs.numpy())
