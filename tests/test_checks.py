"""The one input check: torch's shape errors become "the model cannot take inputs of shape ..."."""

import numpy as np
import pytest
import torch
from torch import nn

from netxray._checks import check_labels, check_model_input, expected_input, probe_model


def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_wrong_number_of_features_says_what_the_model_takes():
    with pytest.raises(ValueError) as e:
        probe_model(mlp(), torch.zeros(50, 5))
    msg = str(e.value)
    assert "the model cannot take inputs of shape (50, 5); it expects (batch, 4)" in msg
    assert "'0' is Linear with in_features=4" in msg
    assert "mat1 and mat2" in msg  # torch's own words kept as evidence
    assert isinstance(e.value.__cause__, RuntimeError)


@pytest.mark.parametrize(("model", "x", "expects"), [
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten()), torch.zeros(6, 64),
     "(batch, 1, height, width)"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten()), torch.zeros(6, 3, 8, 8),
     "(batch, 1, height, width)"),
    (nn.Sequential(nn.Conv1d(2, 4, 3)), torch.zeros(6, 5, 9), "(batch, 2, length)"),
    (nn.Sequential(nn.Embedding(10, 4)), torch.tensor([[3, 12]]), "(batch, length) integer ids in 0..9"),
    (nn.LSTM(4, 5, batch_first=True), torch.zeros(6, 2, 5), "(batch, length, 4)"),
    (nn.Sequential(nn.BatchNorm1d(4)), torch.zeros(6, 5), "(batch, 4, ...)"),
    (nn.Sequential(nn.LayerNorm(4)), torch.zeros(6, 5), "(..., 4)"),
])
def test_each_kind_of_first_layer(model, x, expects):
    with pytest.raises(ValueError, match="cannot take inputs of shape") as e:
        probe_model(model, x)
    assert f"it expects {expects}" in str(e.value)


def test_a_model_without_parameters_still_gets_the_clear_error():
    model = nn.Sequential(nn.Unflatten(1, (2, 3)))
    assert expected_input(model) is None
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(4, 5\)\. torch says"):
        probe_model(model, torch.zeros(4, 5))


def test_other_errors_of_the_model_are_its_own():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("my own bug")

    with pytest.raises(RuntimeError, match="my own bug"):
        probe_model(Broken(), torch.zeros(2, 3))


def test_the_probe_runs_a_few_samples_in_eval_mode_and_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 3))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append((i[0].shape, m.training)))
    out = probe_model(model, np.random.default_rng(0).normal(size=(100, 4)), n=8)
    assert out.shape == (8, 3) and out.dtype == torch.float32  # float64 data cast to the model's
    assert seen == [(torch.Size([8, 4]), False)]
    assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_tuple_dict_and_logits_outputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, a, b):
            return {"logits": self.fc(a + b)}

    x = torch.zeros(4, 3)
    assert probe_model(Two(), (x, x)).shape == (4, 2)
    assert probe_model(Two(), {"a": x, "b": x}).shape == (4, 2)
    with pytest.raises(ValueError, match=r"inputs of shape \{a: \(4, 5\), b: \(4, 5\)\}"):
        probe_model(Two(), {"a": torch.zeros(4, 5), "b": torch.zeros(4, 5)})


def test_labels_against_the_models_outputs():
    check_labels(np.array([0, 1, 2]), 3)
    check_labels(np.array([0.5, 7.0]), 3)  # regression targets are not class indices
    with pytest.raises(ValueError, match="label 7 but the model outputs 3 classes") as e:
        check_labels(np.array([0, 7, 1]), 3)
    assert "labels must be 0..2" in str(e.value)
    with pytest.raises(ValueError, match=r"label -1 but the model outputs 3 classes \(2 labels"):
        check_labels(torch.tensor([-1, 0, 5]), 3)
    with pytest.raises(ValueError, match="target 4 but the model outputs 2 classes"):
        check_labels(torch.tensor([4]), 2, what="target")


def test_check_model_input_returns_the_number_of_classes():
    x = torch.zeros(20, 4)
    assert check_model_input(mlp(), x, torch.arange(20) % 3) == 3
    with pytest.raises(ValueError, match="label 7 but the model outputs 3 classes"):
        check_model_input(mlp(), x, torch.full((20,), 7))
    with pytest.raises(ValueError, match="20 input samples but 19 labels"):
        check_model_input(mlp(), x, torch.zeros(19, dtype=torch.long))
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(20, 5\)"):
        check_model_input(mlp(), torch.zeros(20, 5), torch.zeros(20, dtype=torch.long))


def test_a_single_unbatched_sample_is_refused_by_the_probe():
    with pytest.raises(ValueError, match=r"output has shape \(3,\) for a batch of 4 samples.*"
                       r"one sample, pass x\[None\] \(shape \(1, 4\)\)"):
        probe_model(mlp(), torch.zeros(4))
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(20,\); it expects "
                       r"\(batch, 4\)"):
        check_model_input(mlp(), np.zeros(20, dtype=np.float32))
    ids = torch.tensor([1, 2, 3])  # (batch,) token ids: one row per sample, fine
    assert probe_model(nn.Embedding(5, 2), ids).shape == (3, 2)


def test_explained_shape_errors_cost_nothing_and_keep_other_errors():
    from netxray._checks import explained_shape_errors, shape_error

    model, x = mlp(), torch.zeros(6, 5)
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(6, 5\); it expects"):
        with explained_shape_errors(model, x):
            model(x)
    with pytest.raises(KeyError), explained_shape_errors(model, x):
        raise KeyError("not a shape error")
    assert shape_error(model, x, RuntimeError("CUDA out of memory")) is None


def test_nonfinite_parameters_are_named_in_the_warning():
    from netxray._checks import nonfinite_parameters, warn_nonfinite
    from netxray._warnings import NetxrayWarning

    model = mlp()
    warn_nonfinite(model, [torch.ones(3), np.ones(2)], "m")  # finite: silent
    with pytest.warns(NetxrayWarning, match=r"m: the maps contain NaN/Inf because the model's "
                      r"outputs or gradients are NaN/Inf at these inputs"):
        warn_nonfinite(model, [np.array([np.inf])], "m", "the maps contain")
    with torch.no_grad():
        model[2].bias[1] = float("inf")
    model.register_buffer("stat", torch.tensor([float("nan")]))
    assert nonfinite_parameters(model) == ["2.bias", "stat"]
    with pytest.warns(NetxrayWarning, match=r"parameter\(s\) 2\.bias, stat hold NaN/Inf"):
        warn_nonfinite(model, [model(torch.zeros(2, 4))], "m")


def test_memory_of_the_machine():
    import os

    from netxray._checks import gib, memory_bytes

    assert memory_bytes() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert gib(3 << 30) == "3 GiB" and gib(512 << 20) == "512 MiB"


def test_the_logits_are_found_wherever_a_model_puts_them():
    """One rule for every reader of a model's output (the input check and the adapter)."""
    from collections import OrderedDict

    from netxray._checks import output_tensor
    from netxray.batches import pick_output

    hidden, logits = torch.zeros(2, 4), torch.ones(2, 3)

    class WithLogits:  # an object with a logits attribute, as HF's outputs have
        def __init__(self):
            self.logits = logits

    for out in ({"hidden": hidden, "logits": logits}, OrderedDict(h=hidden, logits=logits),
                WithLogits(), [None, logits], logits):
        assert output_tensor(out) is logits and pick_output(out) is logits
    assert output_tensor({"a": "text"}) is None
