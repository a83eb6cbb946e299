"""The CLI is a thin layer: it parses, calls the library, prints, and exits with a clear code."""

import json
import textwrap

import numpy as np
import pytest
import torch

from netxray import cli


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_demo_prints_the_lecture_table_and_writes_a_report(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "--no-progress", "--out", str(tmp_path))
    assert code == 0
    assert "epoch 300 | loss 0.2969 | train acc 0.861" in out
    assert "Saliency scores for first test point: [-0.10720718  0.11882685]" in out
    assert "netxray health report" in out
    assert f"Report: {tmp_path / 'report.html'}" in out
    assert (tmp_path / "report.html").exists()


def test_demo_options(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "--no-progress", "--dataset", "xor", "--hidden", "8,8",
                       "--activation", "tanh", "--epochs", "60", "--lr", "0.5", "--seed", "1",
                       "--out", str(tmp_path))
    assert code == 0 and "epoch  60 |" in out


@pytest.mark.parametrize("argv", [["demo", "--hidden", "0"], ["demo", "--epochs", "x"],
                                  ["demo", "--lr", "-1"], ["nonsense"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2


def test_bad_dataset_exits_2_with_a_message(capsys, tmp_path):
    code, _, err = run(capsys, "demo", "--no-progress", "--dataset", "mnist", "--out", str(tmp_path))
    assert code == 2 and "unknown dataset 'mnist'" in err


def test_lists(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0 and "moons" in out and "digits" in out
    code, out, _ = run(capsys, "presets")
    assert code == 0 and "dying_relu" in out


@pytest.fixture
def user_model(tmp_path):
    """A user's own model file, weights and data, as `diagnose --model` gets them."""
    src = tmp_path / "mynet.py"
    src.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def make():
            return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    """))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every hidden unit dead
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save(model.state_dict(), tmp_path / "w.pt")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(200, 4)), y=rng.integers(0, 3, 200))
    return tmp_path


def test_diagnose_a_users_model_finds_dead_units(capsys, user_model):
    for weights in ("w.safetensors", "w.pt"):
        code, out, _ = run(capsys, "diagnose", "--model", f"{user_model}/mynet.py:make",
                           "--weights", str(user_model / weights), "--data",
                           str(user_model / "d.npz"), "--json")
        assert code == 1
        found = json.loads(out)
        kinds = {f["kind"] for f in found["findings"]}
        assert "dead_units" in kinds


def test_diagnose_refuses_pickled_objects(capsys, user_model):
    bad = user_model / "evil.pt"
    torch.save({"model": object()}, bad)  # not a state dict of tensors
    code, _, err = run(capsys, "diagnose", "--model", f"{user_model}/mynet.py:make", "--weights",
                       str(bad), "--data", str(user_model / "d.npz"))
    assert code == 2 and "weights_only=True" in err


def test_diagnose_bad_model_spec(capsys, user_model):
    code, _, err = run(capsys, "diagnose", "--model", "mynet", "--data", str(user_model / "d.npz"))
    assert code == 2 and "package.module:factory" in err
    code, _, err = run(capsys, "diagnose", "--model", f"{user_model}/mynet.py:nope",
                       "--data", str(user_model / "d.npz"))
    assert code == 2 and "no callable 'nope'" in err
    code, _, err = run(capsys, "diagnose", "--model", f"{user_model}/mynet.py:make")
    assert code == 2 and "--model needs --data" in err


def test_diagnose_preset(capsys):
    code, out, _ = run(capsys, "diagnose", "--preset", "healthy")
    assert code == 0
    code, out, _ = run(capsys, "diagnose", "--preset", "dying_relu", "--json")
    assert code == 1 and "dead_units" in out


def test_explain_writes_attributions(capsys, tmp_path):
    code, out, _ = run(capsys, "explain", "--preset", "healthy", "--method",
                       "integrated_gradients", "--out", str(tmp_path))
    assert code == 0
    written = out.split()
    assert any(p.endswith(".npz") for p in written) and any(p.endswith(".csv") for p in written)
    assert any(p.endswith(".png") for p in written)


def test_project_writes_coordinates_with_labels(capsys, tmp_path, user_model):
    out = tmp_path / "coords.csv"
    code, stdout, _ = run(capsys, "project", "--model", f"{user_model}/mynet.py:make", "--data",
                          str(user_model / "d.npz"), "--layer", "0", "--out", str(out))
    assert code == 0 and "pca of 0 (8 features, 200 samples)" in stdout
    rows = out.read_text().splitlines()
    assert rows[0].split(",")[:4] == ["index", "pca1", "pca2", "label"] and len(rows) == 201
    code, _, err = run(capsys, "project", "--preset", "healthy", "--layer", "nope")
    assert code == 2 and "layer 'nope' not found" in err
