import numpy as np
import pytest
import torch
from torch import nn

import netxray
from netxray.capture import default_layers, record, select_layers
from padded_ids import padded


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


def test_the_mode_dependent_layers_are_named_with_their_type_not_read_as_a_count():
    """A Sequential's dropout is layer "1": "(1)" read as a count; now "'1' (Dropout)"."""
    m = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.BatchNorm1d(4), nn.ReLU())
    with pytest.raises(ValueError, match=r"mode-dependent layers: '1' \(Dropout\), '2' "
                                         r"\(BatchNorm1d\)\. Dropout would"):
        netxray.activations(m, torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"layers: the model itself \(Dropout\)\."):
        netxray.activations(nn.Dropout(0.5), torch.randn(4, 3))


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


def test_an_lstm_output_is_recorded_as_the_model_made_it():
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


# --- batches as models take them (netxray.batches) ---------------------------------------


class KwNet(nn.Module):
    """Takes keyword inputs like a HF model: token ids and an attention mask."""

    def __init__(self, vocab: int = 11, dim: int = 4, hidden: int = 5, classes: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(vocab, dim)
        self.fc = nn.Linear(dim, hidden)
        self.act = nn.ReLU()
        self.head = nn.Linear(hidden, classes)

    def forward(self, input_ids, attention_mask=None):
        h = self.act(self.fc(self.emb(input_ids)))  # (batch, seq, hidden), per token
        m = attention_mask[..., None].to(h.dtype)
        return {"hidden": h, "logits": self.head((h * m).sum(1) / m.sum(1))}


def test_read_batches_tensors_tuples_dicts_and_masks():
    from netxray.batches import BatchFormat, read_batches

    X, y = torch.randn(5, 3), torch.arange(5)
    got = list(read_batches((X, y), batch_size=2))
    assert [b.size for b in got] == [2, 2, 1] and got[0].args[0].shape == (2, 3)
    assert torch.equal(torch.cat([b.labels for b in got]), y) and got[0].kwargs == {}
    ids = torch.tensor([[1, 2, 0], [3, 0, 0]])
    am = (ids != 0).long()
    (b,) = read_batches([{"input_ids": ids, "attention_mask": am, "labels": torch.tensor([1, 0])}])
    assert b.args == () and list(b.kwargs) == ["input_ids", "attention_mask"]  # labels removed
    assert b.mask.dtype == torch.bool and torch.equal(b.mask, am.bool())
    assert torch.equal(b.labels, torch.tensor([1, 0])) and b.size == 2
    # a whole dataset as a dict of arrays is split like a tensor, labels under another key
    whole = {"input_ids": np.tile(ids.numpy(), (3, 1)), "y": np.arange(6)}
    parts = list(read_batches(whole, 4, BatchFormat(labels="y")))
    assert [p.size for p in parts] == [4, 2] and parts[1].labels.tolist() == [4, 5]
    assert parts[0].mask is None  # the default mask key is optional
    # a mask as a tensor for the whole dataset, sliced along with the data; or a function
    full = torch.tensor([[1, 1, 0]] * 6)
    parts = list(read_batches(torch.zeros(6, 3), 4, BatchFormat(mask=full)))
    assert [tuple(p.mask.shape) for p in parts] == [(4, 3), (2, 3)]
    pad = ids == 0
    (b,) = read_batches([{"src": ids, "pad": pad}], fmt=BatchFormat(mask=lambda r: ~r["pad"]))
    assert torch.equal(b.mask, ~pad)


def test_read_batches_refuses_inconsistent_data():
    from netxray.batches import BatchFormat, read_batches

    with pytest.raises(ValueError, match=r"inputs and labels differ in length \(4 vs 3\)"):
        list(read_batches([(torch.randn(4, 3), torch.zeros(3))]))
    with pytest.raises(ValueError, match="some batches have labels and some do not"):
        list(read_batches([(torch.randn(2, 3), torch.zeros(2)), torch.randn(2, 3)]))
    with pytest.raises(ValueError, match="labels entry 'label' is not in the batch"):
        list(read_batches([{"x": torch.ones(2, 3)}], fmt=BatchFormat(labels="label")))
    with pytest.raises(ValueError, match="mask entry 'am' is not in the batch"):
        list(read_batches([{"x": torch.ones(2, 3)}], fmt=BatchFormat(mask="am")))
    with pytest.raises(ValueError, match=r"attention mask must be \(batch, seq\) = \(2, seq\)"):
        list(read_batches([{"x": torch.ones(2, 3), "attention_mask": torch.ones(3, 3)}]))
    with pytest.raises(ValueError, match="1 \\(or True\\) for real tokens"):
        list(read_batches([{"x": torch.ones(2, 3), "attention_mask": torch.full((2, 3), -1e9)}]))
    with pytest.raises(ValueError, match="the mask has 6 rows for 4 samples"):
        list(read_batches(torch.zeros(4, 3), fmt=BatchFormat(mask=torch.ones(6, 3))))
    with pytest.raises(ValueError, match="entries differ in length"):
        list(read_batches({"input_ids": torch.ones(4, 3), "labels": torch.ones(3)}))
    with pytest.raises(ValueError, match="no batches"):
        list(read_batches([]))
    with pytest.raises(TypeError, match="cannot read data"):
        list(read_batches(42))


def test_pick_output_defaults_keys_indices_and_callables():
    from collections import OrderedDict

    from netxray.batches import pick_output

    a, b = torch.ones(2, 3), torch.zeros(2, 4)
    assert pick_output(a) is a
    assert pick_output((a, b)) is a and pick_output((None, (b, a))) is b
    assert pick_output({"hidden": b, "logits": a}) is a  # logits first, wherever it is
    assert pick_output(OrderedDict(loss=None, hidden=b)) is b  # else the first tensor
    assert pick_output({"h": b, "logits": a}, "h") is b
    assert pick_output((a, b), 1) is b and pick_output({"h": b, "logits": a}, -1) is a
    assert pick_output((a, b), lambda o: o[1] * 2).shape == (2, 4)
    with pytest.raises(ValueError, match="has no 'scores'; it has 'h'"):
        pick_output({"h": b}, "scores")
    with pytest.raises(ValueError, match="out of range"):
        pick_output((a,), 3)
    with pytest.raises(TypeError, match="not a tensor; pick one with output="):
        pick_output({"n": 3}, "n")


def test_activations_pass_dict_batches_as_keywords_with_clear_errors():
    net = KwNet().eval()
    ids = torch.tensor([[1, 2, 3], [4, 5, 0]])
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": torch.tensor([2, 0])}
    a = netxray.activations(net, [batch], layers="act")
    expected = net(ids, (ids != 0).long())
    torch.testing.assert_close(a.outputs, expected["logits"])  # logits picked by default
    assert a.targets.tolist() == [2, 0]
    hidden = netxray.activations(net, [batch], layers="act", output="hidden")
    assert hidden.token_outputs and hidden.outputs.shape == (5, 5)  # real tokens only
    with pytest.raises(ValueError, match=r"takes no argument 'y'.*pass labels='y'"):
        netxray.activations(net, [{"input_ids": ids, "y": torch.tensor([2, 0])}])


def test_activations_refuse_an_unbatched_sample_and_mismatched_lengths():
    m = make_model().eval()
    with pytest.raises(ValueError, match=r"one sample, pass x\[None\] \(shape \(1, 3\)\)"):
        netxray.activations(m, torch.randn(3))
    with pytest.raises(ValueError, match="differ in length"):
        netxray.activations(m, [(torch.randn(4, 3), torch.zeros(3))])
    with pytest.raises(ValueError, match="some batches have labels and some do not"):
        netxray.activations(m, [(torch.randn(4, 3), torch.zeros(4)), torch.randn(2, 3)])


# --- padding never counts ----------------------------------------------------------------


def _padded(seqs, width, left=False):
    ids, am = padded(seqs, width, left)
    return {"input_ids": ids, "attention_mask": am}


SENTENCES = [[3, 1, 4, 1, 5], [9, 2], [6, 5, 3, 5], [8], [9, 7, 9, 3, 2, 3]]


def test_token_rows_do_not_depend_on_batching_or_padding_and_match_numpy():
    net = KwNet().eval()
    E = net.emb.weight.detach().numpy()
    W, b = net.fc.weight.detach().numpy(), net.fc.bias.detach().numpy()
    per_seq = [np.maximum(E[s] @ W.T + b, 0) for s in SENTENCES]  # unpadded tokens, in NumPy
    expected = np.concatenate(per_seq)
    results = []
    for batch_size, width, left in [(5, 6, False), (2, 9, False), (1, 6, False), (3, 8, True)]:
        batches = [_padded(SENTENCES[i:i + batch_size], width, left)
                   for i in range(0, len(SENTENCES), batch_size)]
        a = netxray.activations(net, batches, layers="act")
        assert a.token_layers == ("act",) and a["act"].shape == (18, 5)
        np.testing.assert_allclose(a["act"].numpy(), expected, rtol=1e-5, atol=1e-6)
        results.append(a)
    # each row knows its sentence and its position among the real tokens
    index = [[i, p] for i, s in enumerate(SENTENCES) for p in range(len(s))]
    for a in results:
        assert a.token_index.tolist() == index
        torch.testing.assert_close(a.outputs, results[0].outputs, rtol=1e-5, atol=1e-6)
    mean = netxray.activations(net, [_padded(SENTENCES, 7)], layers="act", pool="mean")
    first = netxray.activations(net, [_padded(SENTENCES, 7, left=True)], layers="act",
                                pool="first")
    np.testing.assert_allclose(mean["act"].numpy(), np.stack([p.mean(0) for p in per_seq]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first["act"].numpy(), np.stack([p[0] for p in per_seq]),
                               rtol=1e-5, atol=1e-6)
    assert mean.token_index is None and mean.token_layers == ()


def test_masks_as_tensors_and_pooling_errors(tmp_path):
    class Plain(nn.Module):  # takes one tensor of ids; the mask comes from the user
        def __init__(self):
            super().__init__()
            self.net = KwNet()

        def forward(self, ids):
            return self.net(ids, (ids != 0).long())["logits"]

    ids = _padded(SENTENCES, 6)["input_ids"]
    a = netxray.activations(Plain().eval(), ids, layers="net.act", mask=ids != 0, batch_size=2)
    assert a["net.act"].shape == (18, 5) and a.outputs.shape == (5, 3)
    path = a.save(tmp_path / "tok.npz")
    assert netxray.Activations.load(path) == a
    with pytest.raises(ValueError, match="pool='mean' needs an attention mask"):
        netxray.activations(Plain().eval(), ids, layers="net.act", pool="mean")
    with pytest.raises(ValueError, match="pool must be None, 'mean' or 'first'"):
        netxray.activations(Plain().eval(), ids, pool="max")
    empty = ids.clone()
    empty[1] = 0
    with pytest.raises(ValueError, match="no real token"):
        netxray.activations(Plain().eval(), empty, layers="net.act", mask=empty != 0,
                            pool="first")


# --- every call of a shared module -------------------------------------------------------


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock, written here: one ReLU module used twice."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(), BasicBlock())
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.layer1(self.stem(x)).mean((2, 3)))


def test_shared_module_calls_are_separate_layers():
    net = TinyResNet().eval()
    x = torch.randn(6, 3, 5, 5)
    a = netxray.activations(net, x, layers=nn.ReLU, batch_size=4)
    assert list(a.layers) == ["layer1.0.relu", "layer1.0.relu#1", "layer1.1.relu", "layer1.1.relu#1"]
    with torch.no_grad():
        blk = net.layer1[0]
        s = net.stem(x)
        first = torch.relu(blk.bn1(blk.conv1(s)))
        second = torch.relu(blk.bn2(blk.conv2(first)) + s)
    torch.testing.assert_close(a["layer1.0.relu"], first)
    torch.testing.assert_close(a["layer1.0.relu#1"], second)
    assert all(v.shape == (6, 4, 5, 5) for v in a.layers.values())
    # one call by name; a list mixing the module and one of its calls records every call
    only = netxray.activations(net, x, layers="layer1.1.relu#1")
    assert list(only.layers) == ["layer1.1.relu#1"]
    assert list(select_layers(net, ["layer1.0.relu#1", "fc"])) == ["layer1.0.relu#1", "fc"]
    with record(net, ["layer1.0.relu", "layer1.0.relu#1"]) as rec:
        net(x[:2])
        net(x[2:])
    assert rec.layers == ["layer1.0.relu", "layer1.0.relu#1"]
    torch.testing.assert_close(rec["layer1.0.relu#1"], second)
    assert [c.shape[0] for c in rec.calls("layer1.0.relu")] == [2, 4]
    with pytest.raises(ValueError, match="'layer1.0.relu#0': the first call"):
        select_layers(net, "layer1.0.relu#0")
    with pytest.raises(ValueError, match="layer 'layer1.0.rel' not found"):
        select_layers(net, "layer1.0.rel#1")
    with pytest.raises(ValueError, match="never ran"):
        netxray.activations(net, x, layers="layer1.0.relu#2")
    from netxray.capture import hooks

    with pytest.raises(ValueError, match="one call of a shared module"):
        with hooks(select_layers(net, "layer1.0.relu#1"), lambda n, t: None):
            pass


def test_a_call_suffix_in_a_glob_picks_that_call_of_every_match(hook_count):
    """``"layer1.*.relu#1"``: the glob names the modules, ``#1`` their second call (it was
    "layer 'layer1.*.relu' not found")."""
    net = TinyResNet().eval()
    x = torch.randn(6, 3, 5, 5)
    seen: dict[str, list[torch.Tensor]] = {}
    handles = [net.layer1[i].relu.register_forward_hook(
        lambda _m, _i, out, i=i: seen.setdefault(f"layer1.{i}.relu", []).append(out.clone()))
        for i in range(2)]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    a = netxray.activations(net, x, layers="layer1.*.relu#1")
    assert list(a.layers) == ["layer1.0.relu#1", "layer1.1.relu#1"]
    for i in range(2):
        assert len(seen[f"layer1.{i}.relu"]) == 2
        torch.testing.assert_close(a[f"layer1.{i}.relu#1"], seen[f"layer1.{i}.relu"][1])
    with pytest.raises(ValueError, match=r"layer 'layer9\.\*' not found \(in 'layer9\.\*#1': "
                                         r"'layer9\.\*' names the module, #1 its call\)"):
        select_layers(net, "layer9.*#1")
    assert hook_count(net) == 0


def test_a_call_the_module_never_makes_says_how_many_it_made(hook_count):
    """``relu#5`` of a module called twice: "ran 2 times per forward pass, as layers relu,
    relu#1", not a bare "never ran" (nor "call the model first" after it was called)."""
    net = TinyResNet().eval()
    x = torch.randn(4, 3, 5, 5)
    told = (r"layer 'layer1\.0\.relu#5' never ran: module 'layer1\.0\.relu' ran 2 times per "
            r"forward pass, as layers layer1\.0\.relu, layer1\.0\.relu#1 ")
    with pytest.raises(ValueError, match=told):
        netxray.activations(net, x, layers="layer1.0.relu#5")
    with pytest.raises(ValueError, match=told):
        netxray.collect_stats(net, x, layers=["fc", "layer1.0.relu#5"])
    with record(net, "layer1.0.relu#5") as rec:
        net(x)
    with pytest.raises(ValueError, match=told):
        rec["layer1.0.relu#5"]
    with record(net, "layer1.0.relu#5") as rec:
        pass
    with pytest.raises(ValueError, match="was recorded but never ran; call the model first"):
        rec["layer1.0.relu#5"]
    assert hook_count(net) == 0


def test_calling_a_shared_module_outside_the_model_is_call_zero(hook_count):
    net = TinyResNet().eval()
    with record(net, "layer1.0.relu") as rec:
        net.layer1[0].relu(torch.randn(2, 4, 5, 5))
        net.layer1[0].relu(torch.randn(3, 4, 5, 5))
    assert rec.layers == ["layer1.0.relu"] and [c.shape[0] for c in rec.calls("layer1.0.relu")] == [2, 3]
    assert hook_count(net) == 0


# --- batch first, always -----------------------------------------------------------------


@pytest.mark.parametrize("first", [True, False])
def test_lstm_outputs_come_back_batch_first(first):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.rnn = nn.LSTM(3, 4, batch_first=first)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):  # x: (batch, seq, 3)
            out, _ = self.rnn(x if first else x.transpose(0, 1))
            out = out if first else out.transpose(0, 1)
            return self.fc(out[:, -1])

    net = Net().eval()
    x = torch.randn(5, 7, 3)
    a = netxray.activations(net, x, layers="rnn", batch_size=2)
    with torch.no_grad():
        own, _ = net.rnn(x if first else x.transpose(0, 1))
    torch.testing.assert_close(a["rnn"], own if first else own.transpose(0, 1))
    assert a["rnn"].shape == (5, 7, 4)


class PackedGRU(nn.Module):
    """A GRU over packed sequences: ``forward(x, lengths)`` takes two tensors."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.GRU(3, 4, batch_first=False)

    def forward(self, x, lengths):  # x: (batch, seq, 3), padded at the end
        from torch.nn.utils.rnn import pack_padded_sequence

        packed = pack_padded_sequence(x.transpose(0, 1), lengths, enforce_sorted=False)
        return self.rnn(packed)[1][-1]


def test_packed_sequences_are_unpacked_to_real_tokens():
    net = PackedGRU().eval()
    lengths = torch.tensor([2, 5, 3])
    x = torch.randn(3, 5, 3)
    a = netxray.activations(net, [{"x": x, "lengths": lengths}], layers="rnn")
    assert a.token_layers == ("rnn",) and a["rnn"].shape == (10, 4)
    with torch.no_grad():
        alone = [net.rnn(x[i, : int(n)])[0] for i, n in enumerate(lengths)]  # unbatched runs
    torch.testing.assert_close(a["rnn"], torch.cat(alone), rtol=1e-5, atol=1e-6)
    assert a.token_index[:, 0].tolist() == [0, 0, 1, 1, 1, 1, 1, 2, 2, 2]


def test_an_x_lengths_tuple_batch_says_which_batch_forms_exist():
    """A tuple batch is (inputs, labels): (x, lengths) called forward(x) and Python said
    "forward() missing 1 required positional argument". Now: the batch forms, and the dict
    batch that passes the lengths (which then works)."""
    net = PackedGRU().eval()
    x, lengths = torch.randn(3, 5, 3), torch.tensor([2, 5, 3])
    told = (r"the model's forward\(x, lengths\) cannot be called with what the batch gives "
            r"\(1 positional input\): missing a required argument: 'lengths'\. netxray reads "
            r"a batch as a tensor .*an \(x, y\) tuple .*or a dict passed to the model by "
            r"keyword\. .*\{'x': \.\.\., 'lengths': \.\.\., 'labels': y\}")
    for data in ((x, lengths), [(x, lengths)]):
        with pytest.raises(ValueError, match=told):
            netxray.activations(net, data)
        with pytest.raises(ValueError, match=told):
            netxray.collect_stats(net, data)
    y = torch.tensor([0, 1, 0])
    a = netxray.activations(net, [{"x": x, "lengths": lengths, "labels": y}], layers="rnn")
    assert a["rnn"].shape == (10, 4) and a.targets.tolist() == [0, 1, 0]

    class Inside(nn.Module):  # a TypeError raised inside forward is the model's own
        def forward(self, x):
            return x + "text"

    with pytest.raises(TypeError, match="unsupported operand"):
        netxray.activations(nn.Sequential(Inside()), torch.randn(2, 3))


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_transformer_encoder_nested_tensors_with_a_padding_mask(monkeypatch):
    import netxray._outputs as outs

    unnested = []
    real_unnest = outs._unnest
    monkeypatch.setattr(outs, "_unnest", lambda name, t: unnested.append(name) or real_unnest(name, t))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=True)

        def forward(self, src, src_key_padding_mask):
            return self.enc(src, src_key_padding_mask=src_key_padding_mask)

    net = Net().eval()
    lengths = [4, 6, 1]
    x = torch.randn(3, 6, 8)
    pad = torch.arange(6)[None, :] >= torch.tensor(lengths)[:, None]
    layers = ["enc.layers.0", "enc.layers.1", "enc.layers.0.linear1"]
    a = netxray.activations(net, [{"src": x, "src_key_padding_mask": pad}], layers=layers,
                            mask=lambda b: ~b["src_key_padding_mask"])
    assert a.token_layers == ("enc.layers.0", "enc.layers.0.linear1", "enc.layers.1")
    assert set(unnested) == set(layers)  # the layers really passed nested tensors
    with torch.no_grad():  # each sequence alone, unpadded, without a mask
        alone = [net.enc.layers[0](x[i:i + 1, :n]) for i, n in enumerate(lengths)]
        alone1 = [net.enc.layers[1](h) for h in alone]
    torch.testing.assert_close(a["enc.layers.0"], torch.cat(alone, 1)[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a["enc.layers.1"], torch.cat(alone1, 1)[0], rtol=1e-4, atol=1e-5)
    assert a["enc.layers.0.linear1"].shape == (11, 16) and a.outputs.shape == (11, 8)
    # without telling netxray the mask, the nested tensors still say which tokens are real
    b = netxray.activations(net, [{"src": x, "src_key_padding_mask": pad}],
                            layers="enc.layers.1")
    torch.testing.assert_close(b["enc.layers.1"], a["enc.layers.1"])
    assert torch.equal(b.token_index, a.token_index) and b.outputs.shape == (11, 8)


# --- default layers: activations recognised by what they are -----------------------------


def test_default_layers_recognise_other_libraries_activations():
    class NewGELUActivation(nn.Module):  # HF's, by name: no torch activation class
        def forward(self, x):
            return 0.5 * x * (1 + torch.tanh(0.79788456 * (x + 0.044715 * x**3)))

    class LinearActivation(nn.Module):
        def forward(self, x):
            return x

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Linear(4, 4)

        def forward(self, x):
            return self.q(x)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn, self.fc, self.act = Attention(), nn.Linear(4, 4), NewGELUActivation()
            self.out = LinearActivation()

        def forward(self, x):
            return self.out(x + self.act(self.fc(self.attn(x))))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.h = nn.ModuleList([Block(), Block()])

        def forward(self, x):
            for b in self.h:
                x = b(x)
            return x

    assert list(default_layers(Model())) == ["h.0", "h.0.act", "h.1", "h.1.act"]
    from netxray.capture import is_activation

    class ParallelUnit(nn.Module):  # "elu" inside a word is not ELU
        def forward(self, x):
            return x

    assert is_activation(nn.Mish()) and not is_activation(LinearActivation())
    assert not is_activation(ParallelUnit()) and not is_activation(nn.Softmax(-1))
    # a ModuleList of plain MLP blocks (no attention) adds no block outputs
    mlp = nn.ModuleList([nn.Sequential(nn.Linear(2, 2), nn.ReLU())])
    assert list(default_layers(mlp)) == ["0.1"]


# --- inconsistent data is refused on every path through activations ---------------------


def _loader(X, y=None, **kw):
    from torch.utils.data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(X) if y is None else TensorDataset(X, y), **kw)


def _short_labels(batch):  # a collate_fn that loses a label: what a buggy loader yields
    x = torch.stack([b[0] for b in batch])
    return x, torch.stack([b[1] for b in batch])[:-1]


_X = torch.randn(12, 3)
_Y = torch.arange(12) % 2


@pytest.mark.parametrize(("data", "message"), [
    # inputs and labels of different lengths
    ((_X, _Y[:11]), r"differ in length \(12 vs 11\)"),
    ((_X.numpy(), _Y[:11].numpy()), r"differ in length \(12 vs 11\)"),
    ([(_X[:6], _Y[:6]), (_X[6:], _Y[6:11])], r"differ in length \(6 vs 5\)"),
    ([{"input": _X[:6], "labels": _Y[:5]}], r"differ in length \(6 vs 5\)"),
    (lambda: _loader(_X, _Y, batch_size=4, collate_fn=_short_labels), r"\(4 vs 3\)"),
    # batches with and without labels
    ([(_X[:6], _Y[:6]), _X[6:]], "some batches have labels and some do not"),
    ([_X[:6], (_X[6:], _Y[6:])], "some batches have labels and some do not"),
    ([(_X[:6], _Y[:6]), (_X[6:],)], "some batches have labels and some do not"),
    ([{"input": _X[:6], "labels": _Y[:6]}, {"input": _X[6:]}], "some batches have labels and some"),
    # a single unbatched sample, however it arrives
    (_X[0], r"one sample, pass x\[None\] \(shape \(1, 3\)\)"),
    (_X[0].numpy(), r"one sample, pass x\[None\] \(shape \(1, 3\)\)"),
    ([_X[0], _X[1]], r"one sample, pass x\[None\]"),
    (lambda: _loader(_X, batch_size=None), r"one sample, pass x\[None\]"),
    (lambda: _loader(_X, _Y, batch_size=None), "label is a scalar: is it one unbatched sample"),
    ([(_X[0], _Y[0])], "label is a scalar: is it one unbatched sample"),
])
def test_activations_refuse_inconsistent_data_on_every_path(data, message):
    data = data() if callable(data) else data
    with pytest.raises(ValueError, match=message):
        netxray.activations(make_model().eval(), data)


@pytest.mark.parametrize("data", [
    torch.randn(12, 5),
    (torch.randn(12, 5), torch.zeros(12, dtype=torch.long)),
    [torch.randn(4, 5), torch.randn(4, 5)],
    lambda: _loader(torch.randn(12, 5), batch_size=4),
])
def test_activations_say_what_shape_the_model_takes(data, hook_count):
    m = make_model().eval()
    data = data() if callable(data) else data
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \((12|4), 5\); it expects "
                       r"\(batch, 3\) \(its first layer '0.0' is Linear with in_features=3\)"):
        netxray.activations(m, data)
    assert hook_count(m) == 0


def test_activations_keep_the_models_own_errors():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            raise RuntimeError("my own bug")

    with pytest.raises(RuntimeError, match="my own bug"):
        netxray.activations(Broken(), torch.randn(4, 3), layers="fc")

