"""Layer outputs the model later changes in place, and selected layers that never run.

Every expected value comes from plain PyTorch in the test: forward hooks that ``.clone()``
the output as the layer returns it, or the same block computed out of place.
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import netxray
from netxray.capture import record
from resnet_block import Block


class Net(nn.Module):
    def __init__(self, inplace: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.block = Block(inplace=inplace)
        self.fc = nn.Linear(4, 3)
        for bn in (self.block.bn1, self.block.bn2):  # running stats away from 0/1: signed outputs
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block(self.stem(x)).mean((2, 3)))


LAYERS = ["block.conv1", "block.bn1", "block.relu", "block.relu#1", "block.conv2", "block.bn2"]


def reference(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each layer's output as it returned it: plain forward hooks that clone, per call."""
    seen: dict[str, list[torch.Tensor]] = {}
    handles = [
        m.register_forward_hook(lambda _m, _i, o, n=name: seen.setdefault(n, []).append(o.clone()))
        for name, m in model.named_modules() if name.startswith("block.")
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    out = {n: calls[0] for n, calls in seen.items()}
    out["block.relu#1"] = seen["block.relu"][1]
    return out


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(10, 3, 6, 6, generator=g), torch.randint(0, 3, (10,), generator=g)


def _block_outputs(ref_net: nn.Module, x: torch.Tensor, y: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The out-of-place reference net's cross-entropy on ``(x, y)`` and its block's outputs
    (in the graph), by layer name: ``block.bn1``, ``block.bn2``, ``block.relu``,
    ``block.relu#1``."""
    kept: dict[str, list[torch.Tensor]] = {}
    handles = [ref_net.get_submodule(n).register_forward_hook(
        lambda _m, _i, o, n=n: kept.setdefault(n, []).append(o))
        for n in ("block.bn1", "block.bn2", "block.relu")]
    try:
        loss = nn.functional.cross_entropy(ref_net(x), y)
    finally:
        for h in handles:
            h.remove()
    return loss, {"block.bn1": kept["block.bn1"][0], "block.bn2": kept["block.bn2"][0],
                  "block.relu": kept["block.relu"][0], "block.relu#1": kept["block.relu"][1]}


def test_the_reference_sees_what_a_kept_reference_would_lose():
    # the premise: the block changes bn1's and bn2's outputs in place (a test that can fail)
    net, (x, _) = Net().eval(), data()
    ref = reference(net, x)
    kept = {}
    h = net.block.bn1.register_forward_hook(lambda _m, _i, o: kept.setdefault("bn1", o))
    with torch.no_grad():
        net(x)
    h.remove()
    assert ref["block.bn1"].min() < 0 and ref["block.bn2"].min() < 0
    assert kept["bn1"].min() == 0  # the tensor itself now holds relu(bn1)


def test_activations_hold_what_each_layer_output_when_it_ran():
    net, (x, y) = Net().eval(), data()
    ref = reference(net, x)
    a = netxray.activations(net, (x, y), layers=LAYERS, batch_size=4)  # 3 batches
    assert list(a.layers) == LAYERS
    for name in LAYERS:
        torch.testing.assert_close(a[name], ref[name], rtol=0, atol=0, msg=name)
    assert a["block.bn1"].min() < 0 and a["block.bn2"].min() < 0
    # the projection and probe functions read these very rows
    np.testing.assert_array_equal(a.flat("block.bn2"), ref["block.bn2"].reshape(10, -1).numpy())


def test_record_copies_outputs_as_the_layers_ran():
    net, (x, _) = Net().eval(), data()
    ref = reference(net, x)
    with torch.no_grad(), record(net, LAYERS) as rec:
        net(x[:6])
        net(x[6:])
    for name in LAYERS:
        torch.testing.assert_close(rec[name], ref[name], rtol=0, atol=0, msg=name)
    assert [c.shape[0] for c in rec.calls("block.bn1")] == [6, 4]


def test_record_without_detach_refuses_an_output_changed_in_place():
    net, (x, _) = Net().eval(), data()
    with record(net, ["block.bn1", "block.conv2"], detach=False) as rec:
        out = net(x)
    with pytest.raises(ValueError, match=r"layer 'block.bn1': the model changed its output in place.*detach=True"):
        rec["block.bn1"]
    with pytest.raises(ValueError, match="in place"):
        rec.calls("block.bn1")
    # an output left alone is the graph's tensor itself: its gradient is the reference's
    ref_net = Net(inplace=False).eval()
    kept = {}
    h = ref_net.block.conv2.register_forward_hook(lambda _m, _i, o: kept.setdefault("o", o))
    (want,) = torch.autograd.grad(ref_net(x).sum(), kept["o"])
    h.remove()
    (got,) = torch.autograd.grad(out.sum(), rec["block.conv2"])
    torch.testing.assert_close(got, want)


def test_collect_stats_and_gradients_are_those_of_the_layer_outputs():
    net, (x, y) = Net().eval(), data()
    ref = reference(net, x)
    stats = netxray.collect_stats(net, (x, y), LAYERS, gradients=True, batch_size=64)
    for name in LAYERS:
        h = ref[name].double()
        st = stats[name]
        np.testing.assert_allclose(st.min, h.amin((0, 2, 3)).numpy(), rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(st.mean, h.mean((0, 2, 3)).numpy(), rtol=1e-5, atol=1e-7, err_msg=name)
    # gradients with respect to each output as the layer produced it: the out-of-place block's
    ref_net = Net(inplace=False).eval()
    ref_net.load_state_dict(net.state_dict())
    loss, outs = _block_outputs(ref_net, x, y)
    grads = dict(zip(outs, torch.autograd.grad(loss, list(outs.values())), strict=True))
    for name, g in grads.items():
        per_row = g.double() * x.shape[0]  # gradients of each row's own loss
        np.testing.assert_allclose(stats[name].grad_abs_mean, per_row.abs().mean((0, 2, 3)).numpy(),
                                   rtol=1e-5, err_msg=name)
        want = float(per_row.square().sum() / x.shape[0]) ** 0.5
        assert stats[name].grad_norm == pytest.approx(want, rel=1e-5), name
    # bn1's gradient is not relu's: what the tensor changed in place would have given
    assert not np.allclose(stats["block.bn1"].grad_abs_mean, stats["block.relu"].grad_abs_mean)


def test_the_model_is_left_as_it_was(hook_count):
    net = Net().eval()
    net.block.conv1.weight.requires_grad_(False)
    before = copy.deepcopy(net.state_dict())
    x, y = data()
    netxray.collect_stats(net, (x, y), LAYERS, gradients=True)
    netxray.activations(net, x, LAYERS)
    with record(net, LAYERS) as rec:
        net(x)
    assert rec["block.bn1"].min() < 0
    assert hook_count(net) == 0 and not net.training
    assert not net.block.conv1.weight.requires_grad and net.block.conv2.weight.requires_grad
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


def test_boundary_evolution_reads_the_hidden_layer_before_the_inplace_relu():
    torch.manual_seed(0)

    def mlp(inplace: bool) -> nn.Module:
        return nn.Sequential(nn.Linear(2, 6), nn.BatchNorm1d(6), nn.ReLU(inplace=inplace), nn.Linear(6, 2))

    model = mlp(True).eval()
    model[1].running_mean.uniform_(-1, 1)
    ckpt = {0: copy.deepcopy(model.state_dict())}
    X = torch.randn(20, 2)
    got = netxray.boundary_evolution(model, ckpt, X, resolution=8, hidden_layer="1")
    want = netxray.boundary_evolution(mlp(False), ckpt, X, resolution=8, hidden_layer="1")
    np.testing.assert_allclose(got.hidden, want.hidden, rtol=1e-6, atol=1e-9)


class Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.unused = nn.Tanh()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.fc(x)))


_NEVER_CALLED = r"layer\(s\) unused never ran during the forward pass.*Select layers that the forward pass calls"
# a call the module does not make: how many calls it made, and their names
_FEWER_CALLS = (r"layer 'act#3' never ran: module 'act' ran once per forward pass, as layer act "
                r"\(act#k is its call k, counting from 0: 'act#3' would need 4 calls\)")


@pytest.mark.parametrize("layers, message", [
    ("unused", _NEVER_CALLED),
    ("act#3", _FEWER_CALLS),
    (["fc", "unused", "act#3"], f"{_FEWER_CALLS}.*; {_NEVER_CALLED}"),
])
def test_a_selected_layer_that_never_runs_is_an_error_everywhere(layers, message, hook_count):
    model = Unused().eval()
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    with pytest.raises(ValueError, match=message):
        netxray.activations(model, x, layers=layers)
    with pytest.raises(ValueError, match=message):
        netxray.collect_stats(model, x, layers=layers)
    with pytest.raises(ValueError, match=message):
        netxray.collect_stats(model, (x, y), layers=layers, gradients=True)
    with pytest.raises(ValueError, match=message):
        netxray.diagnose(model, (x, y), layers=layers)
    assert hook_count(model) == 0
    assert all(p.requires_grad for p in model.parameters())
    # the layers that run are fine as before
    assert list(netxray.collect_stats(model, x, layers=["fc", "act"])) == ["fc", "act"]


def test_a_watched_run_records_the_layer_outputs_and_their_gradients(tmp_path):
    from netxray.store import open_run

    net, (x, y) = Net().double().train(), data()
    x = x.double()
    ref_net = Net(inplace=False).double().train()
    ref_net.load_state_dict(net.state_dict())
    names = ["block.bn1", "block.bn2", "block.relu#1"]
    ref_loss, kept = _block_outputs(ref_net, x, y)
    outs = [kept[n] for n in names]
    grads = torch.autograd.grad(ref_loss, outs)
    outs = [o.detach() for o in outs]
    with netxray.watch(net, tmp_path / "run", every=1, layers=names, alarms=lambda f, s: None) as w:
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        w.step(loss=loss)
    with open_run(tmp_path / "run") as run:
        for name, o, g in zip(names, outs, grads, strict=True):
            ls = run.layer_stats(name)
            assert ls.min[0] == pytest.approx(float(o.min()), rel=1e-9), name
            assert ls.mean[0] == pytest.approx(float(o.mean()), rel=1e-9, abs=1e-12), name
            assert ls.grad_rms[0] == pytest.approx(float(g.pow(2).mean().sqrt()), rel=1e-9), name
    assert float(outs[0].min()) < 0


def test_diagnose_with_targets_never_asks_for_them():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    x, y = torch.randn(8, 2, 2), torch.randint(0, 2, (8,))
    on_inputs = netxray.diagnose(model, (x, y), layers="0")  # Flatten: no parameter before it
    assert on_inputs.skipped == ("gradients: no selected layer's output has one (it depends on no "
                                 "parameter, as a layer on the inputs, or the loss does not use "
                                 "it); select layers between the parameters and the loss to "
                                 "check them",)
    assert netxray.diagnose(model, (x, y), layers="2").skipped == ()
    assert netxray.diagnose(model, x, layers="2").skipped == (
        "gradients: pass targets (or a loss_fn) to check them",)
