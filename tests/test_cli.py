"""The CLI is a thin layer: it parses, calls the library, prints, and exits with a clear code."""

import json
import textwrap

import numpy as np
import pytest
import torch

from netxray import cli


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])  # (paths as they come)
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


# --------------------------------------------------------------------------------------
# exit codes a CI gate can rely on: 0 fine, 1 problems found, 2 bad input, 3 a crash
# --------------------------------------------------------------------------------------


def _diagnose(capsys, user_model, *extra, data="d.npz", model="make"):
    return run(capsys, "diagnose", "--model", f"{user_model}/mynet.py:{model}",
               "--data", str(user_model / data), *extra)


def _bad_inputs(tmp_path):
    """Each bad input a user can hand the CLI, and the words its message must contain."""
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "feat5.npz", X=rng.normal(size=(30, 5)), y=rng.integers(0, 3, 30))
    np.savez(tmp_path / "lab7.npz", X=rng.normal(size=(30, 4)), y=np.full(30, 7))
    wrong = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    from safetensors.torch import save_file

    save_file(wrong.state_dict(), str(tmp_path / "wrong.safetensors"))
    whole = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(whole[: len(whole) // 2])
    pt = (tmp_path / "w.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(pt[: len(pt) // 2])
    import io
    import zipfile

    y = io.BytesIO()
    np.save(y, np.zeros(30, dtype=np.int64))
    with zipfile.ZipFile(tmp_path / "member.npz", "w") as z:
        z.writestr("X.npy", b"these bytes are not an array")
        z.writestr("y.npy", y.getvalue())
    d = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(d[:300])
    return {
        "wrong number of features": (["--data", "feat5.npz"],
                                     "cannot take inputs of shape (30, 5); it expects (batch, 4)"),
        "labels out of range": (["--data", "lab7.npz"], "label 7 but the model outputs 3 classes"),
        "weights of the wrong shape": (["--weights", "wrong.safetensors"],
                                       "0.weight: file (8, 5), model (8, 4)"),
        "truncated safetensors": (["--weights", "trunc.safetensors"],
                                  "not a readable .safetensors file"),
        "truncated torch.save file": (["--weights", "trunc.pt"], "not a readable torch.save file"),
        "npz member not an array": (["--data", "member.npz"], "member 'X' is not a NumPy array"),
        "truncated npz": (["--data", "trunc.npz"], "not a readable .npz archive"),
    }


@pytest.mark.parametrize("case", ["wrong number of features", "labels out of range",
                                  "weights of the wrong shape", "truncated safetensors",
                                  "truncated torch.save file", "npz member not an array",
                                  "truncated npz"])
def test_bad_input_exits_2_with_a_message_that_names_it(case, capsys, user_model):
    argv, words = _bad_inputs(user_model)[case]
    args = {"--data": "d.npz"}
    args.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    extra = [x for k, v in args.items() if k != "--data" for x in (k, str(user_model / v))]
    code, out, err = _diagnose(capsys, user_model, *extra, data=args["--data"])
    assert code == 2, err
    assert words in err and err.startswith("netxray diagnose: error: ")
    assert "Traceback" not in err and out == ""


@pytest.fixture
def broken_model(user_model):
    (user_model / "broken.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Broken(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 3)

            def forward(self, x):
                raise RuntimeError("kaboom inside forward")

        def make():
            return Broken()
    """))
    return user_model


def test_an_unexpected_failure_exits_3_short_and_the_traceback_is_behind_debug(
        capsys, broken_model):
    argv = ["diagnose", "--model", f"{broken_model}/broken.py:make",
            "--data", str(broken_model / "d.npz")]
    code, _, err = run(capsys, *argv)
    assert code == 3
    assert "unexpected error: RuntimeError: kaboom inside forward" in err
    assert "--debug" in err and "Traceback" not in err and len(err.splitlines()) == 2
    code, _, err = run(capsys, *argv, "--debug")
    assert code == 3 and "Traceback (most recent call last)" in err and "kaboom" in err
    code, _, err = run(capsys, "--debug", *argv)  # before the command works too
    assert code == 3 and "Traceback (most recent call last)" in err


def _private_dev_full(tmp_path):
    import os
    import stat

    path = tmp_path / "full.csv"  # a device named like the file the command writes
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        with open(path, "wb"):
            pass
    except OSError as e:
        pytest.skip(f"cannot make a character device here: {e}")
    return path


def test_a_full_disk_exits_2_naming_the_file(capsys, user_model):
    full = _private_dev_full(user_model)
    code, _, err = run(capsys, "project", "--model", f"{user_model}/mynet.py:make", "--data",
                       str(user_model / "d.npz"), "--layer", "0", "--out", str(full))
    assert code == 2, err
    assert f"cannot write {full}: No space left on device; free some space" in err


def test_a_read_only_disk_exits_2_naming_the_file(capsys, user_model, monkeypatch):
    import errno

    from netxray import _io

    def read_only(fd):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(_io.os, "fsync", read_only)
    out = user_model / "coords.csv"
    code, _, err = run(capsys, "project", "--model", f"{user_model}/mynet.py:make", "--data",
                       str(user_model / "d.npz"), "--layer", "0", "--out", str(out))
    assert code == 2, err
    assert f"cannot write {out}: Read-only file system; the disk is read-only" in err
    assert not out.exists()


def test_out_that_is_a_file_or_dash_for_a_folder_is_refused_before_any_work(capsys, user_model):
    code, _, err = _diagnose(capsys, user_model, "--weights", str(user_model / "w.pt"),
                             "--out", str(user_model / "d.npz"))
    assert code == 2 and "is a file, not a folder" in err
    code, _, err = run(capsys, "explain", "--model", f"{user_model}/mynet.py:make",
                       "--data", str(user_model / "d.npz"), "--out", "-")
    assert code == 2 and "writes a folder of files" in err


# --------------------------------------------------------------------------------------
# the CLI on a user's model
# --------------------------------------------------------------------------------------


def test_diagnose_without_weights_says_they_are_untrained(capsys, user_model):
    code, out, _ = _diagnose(capsys, user_model)
    assert code in (0, 1) and "no --weights given" in out and "untrained" in out
    code, out, err = _diagnose(capsys, user_model, "--json")
    json.loads(out)  # stdout stays pure JSON; the note goes to stderr
    assert "untrained" in err
    code, out, err = _diagnose(capsys, user_model, "--weights", str(user_model / "w.pt"))
    assert "untrained" not in out + err


def test_a_module_name_for_a_file_here_suggests_the_file(capsys, user_model, monkeypatch):
    import os
    import sys

    monkeypatch.chdir(user_model)
    here = {"", ".", os.getcwd(), str(user_model)}
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in here])
    code, _, err = run(capsys, "diagnose", "--model", "mynet:make", "--data", "d.npz")
    assert code == 2 and "use --model mynet.py:make" in err
    code, _, err = run(capsys, "diagnose", "--model", "nosuchmodule:make", "--data", "d.npz")
    assert code == 2 and "is it installed or on PYTHONPATH?" in err


def test_model_factory_errors_are_bad_input(capsys, user_model):
    (user_model / "needs_args.py").write_text("def make(width):\n    return width\n")
    code, _, err = run(capsys, "diagnose", "--model", f"{user_model}/needs_args.py:make",
                       "--data", str(user_model / "d.npz"))
    assert code == 2 and "takes no arguments" in err
    (user_model / "not_a_model.py").write_text("def make():\n    return 42\n")
    code, _, err = run(capsys, "diagnose", "--model", f"{user_model}/not_a_model.py:make",
                       "--data", str(user_model / "d.npz"))
    assert code == 2 and "returned a int, not a torch.nn.Module" in err


def test_a_cnn_is_diagnosed_and_projected_from_the_command_line(capsys, tmp_path):
    (tmp_path / "convnet.py").write_text(textwrap.dedent("""
        from torch import nn

        def make():
            return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(4 * 6 * 6, 3))
    """))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "images.npz", X=rng.normal(size=(40, 1, 8, 8)), y=rng.integers(0, 3, 40))
    code, out, err = run(capsys, "diagnose", "--model", f"{tmp_path}/convnet.py:make",
                         "--data", str(tmp_path / "images.npz"), "--json")
    assert code in (0, 1), err
    relu = json.loads(out)["stats"]["layers"]["1"]
    assert relu["module_type"] == "ReLU" and relu["shape"] == [4, 6, 6]  # the conv's maps
    assert relu["count"][0] == 40 * 6 * 6  # every position of every image
    code, out, err = run(capsys, "project", "--model", f"{tmp_path}/convnet.py:make", "--data",
                         str(tmp_path / "images.npz"), "--layer", "1",
                         "--out", str(tmp_path / "c.csv"))
    assert code == 0, err
    assert "pca of 1 (144 features, 40 samples)" in out
    code, out, err = run(capsys, "explain", "--model", f"{tmp_path}/convnet.py:make", "--data",
                         str(tmp_path / "images.npz"), "--out", str(tmp_path / "ex"))
    assert code == 0, err
    values = np.load(tmp_path / "ex" / "attributions.npz")["values"]
    assert values.shape == (40, 1, 8, 8)
    assert (tmp_path / "ex" / "by_class.png").exists()  # drawn as 8x8 images


def test_project_writes_what_the_suffix_says(capsys, user_model):
    base = ["project", "--model", f"{user_model}/mynet.py:make", "--data",
            str(user_model / "d.npz"), "--layer", "0"]
    code, _, err = run(capsys, *base, "--out", str(user_model / "coords.json"))
    assert code == 0, err
    doc = json.loads((user_model / "coords.json").read_text())
    assert doc["method"] == "pca" and doc["layer"] == "0" and doc["columns"] == ["pca1", "pca2"]
    assert np.asarray(doc["coords"]).shape == (200, 2) and len(doc["labels"]) == 200
    labels = np.load(user_model / "d.npz")["y"]
    assert doc["labels"] == labels.tolist()
    code, _, err = run(capsys, *base, "--out", str(user_model / "coords.txt"))
    assert code == 2 and "cannot tell the format from the suffix '.txt'" in err
    assert not (user_model / "coords.txt").exists()
    code, out, err = run(capsys, *base, "--out", "-")
    assert code == 0
    rows = out.splitlines()
    assert rows[0].startswith("index,pca1,pca2,label") and len(rows) == 201
    assert "trustworthiness" in err  # the summary moves to stderr, stdout is the CSV


def test_explain_refuses_a_target_the_model_cannot_output(capsys, user_model):
    code, _, err = run(capsys, "explain", "--model", f"{user_model}/mynet.py:make", "--data",
                       str(user_model / "d.npz"), "--target", "7",
                       "--out", str(user_model / "ex"))
    assert code == 2 and "--target 7 but the model outputs 3 classes" in err
    assert not (user_model / "ex").exists()


def test_explain_says_what_it_is_doing_on_stderr(capsys, user_model):
    code, out, err = run(capsys, "explain", "--model", f"{user_model}/mynet.py:make", "--data",
                         str(user_model / "d.npz"), "--weights", str(user_model / "w.pt"),
                         "--out", str(user_model / "ex"))
    assert code == 0
    assert "netxray explain: computing saliency for 200 samples" in err
    assert "computing" not in out  # stdout stays the list of files written


# --------------------------------------------------------------------------------------
# a newcomer's first minute: help without torch
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["diagnose", "--help"], ["explain", "--help"],
                                  ["project", "--help"], ["diagnose", "--bogus"],
                                  ["explain", "--method", "nope"], ["--version"]])
def test_help_and_argument_errors_answer_without_importing_torch(argv):
    import subprocess
    import sys

    code = ("import sys\nfrom netxray import cli\n"
            f"try:\n    cli.main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
            "heavy = sorted(m for m in ('torch', 'numpy', 'sklearn', 'matplotlib') "
            "if m in sys.modules)\n"
            "print('HEAVY', heavy, 'CODE', code, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert "HEAVY [] CODE" in done.stderr, done.stderr
    expected = 2 if "--bogus" in argv or "nope" in argv else 0
    assert f"CODE {expected}" in done.stderr


def test_the_explain_methods_literal_names_real_attribution_methods():
    from netxray.attribution import METHODS

    assert set(cli.CLI_METHODS) <= set(METHODS)
    assert "integrated_gradients" in cli.CLI_METHODS


def test_help_lists_the_exit_codes_and_says_model_runs_code(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "3 unexpected" in out and "2 bad input" in out
    with pytest.raises(SystemExit):
        cli.main(["diagnose", "--help"])
    assert "runs that code" in " ".join(capsys.readouterr().out.split())


def test_python_m_netxray_runs_the_cli():
    """`python -m netxray` is the `netxray` command: help exits 0, an unknown command 2."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "netxray", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage: netxray" in done.stdout and "diagnose" in done.stdout
    done = subprocess.run([sys.executable, "-m", "netxray", "no-such-command"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid choice: 'no-such-command'" in done.stderr


@pytest.mark.parametrize(("argv", "words"), [
    (["demo", "--lr", "inf"], "argument --lr: expected a finite number > 0, got inf"),
    (["train", "--lr", "nan"], "argument --lr: expected a finite number > 0, got nan"),
    (["demo", "--seed", "-1"], "argument --seed: a seed must be 0..2**32-1"),
    (["train", "--seed", str(2**32)], "argument --seed: a seed must be 0..2**32-1"),
    (["project", "--seed", "-5"], "argument --seed: a seed must be 0..2**32-1"),
])
def test_an_infinite_rate_or_a_seed_numpy_refuses_is_an_argument_error(argv, words, capsys):
    """Refused while parsing, before any training (not NaN after it, nor scikit-learn's
    words after the model ran)."""
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(argv)
    assert e.value.code == 2 and words in capsys.readouterr().err
    np.random.default_rng(2**32 - 1)  # the largest seed allowed is one NumPy takes
    assert cli.build_parser().parse_args(["demo", "--seed", str(2**32 - 1)]).seed == 2**32 - 1


@pytest.mark.parametrize(("command", "text"), [("demo", True), ("train", False),
                                               ("diagnose", False)])
def test_an_unknown_preset_is_one_line_before_any_progress(command, text, capsys, tmp_path):
    from netxray import presets, resumes

    out = ["--out", str(tmp_path / "o")] if command == "demo" else (
        ["--run", str(tmp_path / "r")] if command == "train" else [])
    code, _, err = run(capsys, command, "--preset", "nosuch", *out)
    assert code == 2
    expected = (f"netxray {command}: error: unknown preset 'nosuch'. Presets: "
                f"{', '.join(presets.names())}.")
    if text:  # demo runs the text presets too
        expected += f" Text presets: {', '.join(resumes.names())}."
    assert err == expected + "\n"
    assert list(tmp_path.iterdir()) == []
