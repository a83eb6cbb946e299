"""Progress bars: on when asked or when someone watches a long pass, silent otherwise, and
never changing a result."""

from __future__ import annotations

import pickle
import re
import sys
import time
import types
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import netxray
from netxray import _progress
from netxray._progress import bar, count_batches, counted, interactive, say
from netxray.attribution import Saliency, attribute_dataset
from netxray.capture import activations
from netxray.health import diagnose, precheck
from netxray.projection import Projector, project
from netxray.stats import collect_stats


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def _data(n: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


class _Slow(nn.Module):
    """An MLP that takes ``pause`` seconds per batch: a pass that is long by the clock."""

    def __init__(self, pause: float) -> None:
        super().__init__()
        self.net = _mlp()
        self.pause = pause

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.pause)
        return self.net(x)


# ----------------------------------------------------------------------------- the rule


def test_progress_true_draws_a_bar_with_the_right_total(capfd: pytest.CaptureFixture[str]) -> None:
    X, y = _data(100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning of any kind, tqdm's included
        collect_stats(_mlp(), (X, y), batch_size=10, progress=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert "collect_stats" in err and "10/10" in err and "100%" in err


def test_progress_false_writes_nothing_even_for_someone_watching(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_progress, "interactive", lambda: True)
    X, y = _data(100)
    model = _mlp()
    collect_stats(model, (X, y), batch_size=10, progress=False)
    activations(model, (X, y), batch_size=10, progress=False)
    diagnose(model, (X, y), batch_size=10, progress=False)
    attribute_dataset(Saliency(model), (X, y), batch_size=10, progress=False)
    project(X.numpy(), "tsne", progress=False)
    assert capfd.readouterr() == ("", "")


def test_default_is_silent_when_stderr_is_not_a_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    assert not interactive()  # pytest captures stderr: neither a terminal nor a notebook
    X, y = _data(100)
    model = _Slow(0.0)
    collect_stats(model, (X, y), batch_size=2)
    activations(model, (X, y), batch_size=2)
    say("not shown")
    assert capfd.readouterr() == ("", "")


def test_default_shows_a_long_pass_to_someone_watching_and_not_a_short_one(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_progress, "interactive", lambda: True)
    monkeypatch.setattr(_progress, "DELAY_S", 0.3)
    X, y = _data(40)
    activations(_Slow(0.0), (X, y), batch_size=20)  # short: done before the delay
    assert capfd.readouterr().err == ""
    activations(_Slow(0.03), (X, y), batch_size=1)  # 40 batches, about 1.2 s: long
    err = capfd.readouterr().err
    assert "activations" in err and "40/40" in err


def test_a_quick_call_makes_no_bar_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not even a hidden one: in a notebook a tqdm widget, displayed or not, is saved in
    the file and makes nbconvert's HTML fetch the widget manager from the network."""
    import tqdm.auto

    made: list[object] = []
    monkeypatch.setattr(tqdm.auto, "tqdm", lambda *a, **k: made.append(k))
    monkeypatch.setattr(_progress, "interactive", lambda: True)
    X, y = _data(40)
    collect_stats(_mlp(), (X, y), batch_size=4)
    with bar(desc="report", total=2) as b:
        b.update(2)
    assert made == []


def test_the_terminal_and_the_notebook_count_as_watching(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setattr(sys, "stderr", Tty())
    assert interactive()
    monkeypatch.setattr(sys, "stderr", None)  # pythonw: no stderr at all
    assert not interactive()
    shell = types.SimpleNamespace(kernel=object())  # what a Jupyter kernel's shell has
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert interactive()
    terminal_ipython = types.SimpleNamespace()  # IPython in a terminal: no kernel
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: terminal_ipython))
    assert not interactive()


def test_progress_must_be_true_false_or_none() -> None:
    X, y = _data(10)
    with pytest.raises(TypeError, match="progress must be True"):
        collect_stats(_mlp(), (X, y), progress="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="progress must be True"):
        Projector("tsne", progress=1)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- the helpers


def test_count_batches_knows_what_can_be_known() -> None:
    X, y = _data(100)
    assert count_batches(X, 30) == 4
    assert count_batches((X, y), 50) == 2
    assert count_batches(X.numpy(), 100) == 1
    assert count_batches({"input_ids": torch.zeros(7, 3), "flag": True}, 2) == 4
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=32)
    assert count_batches(loader, 1024) == 4  # the loader's own batches
    assert count_batches([X[:5], X[5:50], X[50:]], 1024) == 3  # a list of batches
    assert count_batches((x for x in [X]), 1024) is None

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from X

    assert count_batches(torch.utils.data.DataLoader(Stream(), batch_size=8), 1024) is None


def test_counted_closes_its_bar_when_the_loop_fails(capfd: pytest.CaptureFixture[str]) -> None:
    from tqdm.std import tqdm

    before = len(tqdm._instances)
    with pytest.raises(RuntimeError), counted(range(10), desc="work", progress=True) as items:
        for i in items:
            if i == 3:
                raise RuntimeError("stop")
    assert len(tqdm._instances) == before
    assert "3/10" in capfd.readouterr().err


def test_a_bar_without_a_known_total_counts_anyway(capfd: pytest.CaptureFixture[str]) -> None:
    X, y = _data(30)
    batches = ((X[i:i + 10], y[i:i + 10]) for i in range(0, 30, 10))
    collect_stats(_mlp(), batches, progress=True)
    assert re.search(r"collect_stats: 3batch \[", capfd.readouterr().err)


def test_bar_and_say_when_off_do_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    with bar(desc="report", total=3, unit="step", progress=False) as b:
        b.note("statistics")
        b.describe("report")
        b.update()
        assert b.n == 1  # the work is counted, shown or not
    say("compiling", progress=False)
    assert capfd.readouterr() == ("", "")
    with bar(desc="report", total=3, unit="step", progress=True) as b:
        for step in ("statistics", "projections", "html"):
            b.note(step)
            b.update()
    say("compiling", progress=True)
    err = capfd.readouterr().err
    assert "report" in err and "3/3" in err and "html" in err and "netxray: compiling" in err


def test_a_bar_by_hand_waits_for_the_delay_like_any_other(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_progress, "interactive", lambda: True)
    with bar(desc="report", total=3, unit="step") as b:  # quick: never drawn
        for step in ("statistics", "projections", "html"):
            b.note(step)
            b.describe("report")
            b.update()
    assert capfd.readouterr().err == ""


# ---------------------------------------------------- every long call, and its results


def test_dataset_passes_name_themselves_and_count_their_batches(
    capfd: pytest.CaptureFixture[str],
) -> None:
    X, y = _data(100)
    model = _mlp()
    for name, call in [
        ("activations", lambda p: activations(model, (X, y), batch_size=25, progress=p)),
        ("diagnose", lambda p: diagnose(model, (X, y), batch_size=25, progress=p)),
        ("precheck", lambda p: precheck(model, (X, y), batch_size=25, progress=p)),
        ("Saliency", lambda p: attribute_dataset(Saliency(model), (X, y), batch_size=25,
                                                 progress=p)),
    ]:
        call(True)
        err = capfd.readouterr().err
        assert name in err and "4/4" in err, (name, err)


def test_results_are_the_same_with_and_without_a_bar(capfd: pytest.CaptureFixture[str]) -> None:
    X, y = _data(100)
    model = _mlp()
    a, b = (activations(model, (X, y), batch_size=10, progress=p) for p in (True, False))
    torch.testing.assert_close(a.layers, b.layers, rtol=0, atol=0)
    torch.testing.assert_close(a.outputs, b.outputs, rtol=0, atol=0)
    s, t = (collect_stats(model, (X, y), batch_size=10, bins=8, gradients=True, progress=p)
            for p in (True, False))
    for name in s:
        np.testing.assert_array_equal(s[name].mean, t[name].mean)
        np.testing.assert_array_equal(s[name].grad_abs_mean, t[name].grad_abs_mean)
    assert s.loss == t.loss
    d, e = (diagnose(model, (X, y), batch_size=10, progress=p) for p in (True, False))
    assert [f.kind for f in d.findings] == [f.kind for f in e.findings]
    f, g = (attribute_dataset(Saliency(model), (X, y), batch_size=10, progress=p)
            for p in (True, False))
    torch.testing.assert_close(f.class_mean_abs, g.class_mean_abs, rtol=0, atol=0)
    assert d.stats["1"].mean.tolist() == e.stats["1"].mean.tolist()


def test_diagnose_reads_a_one_shot_generator_once_with_a_bar(
    capfd: pytest.CaptureFixture[str],
) -> None:
    X, y = _data(40)
    report = diagnose(_mlp(), ((X[i:i + 10], y[i:i + 10]) for i in range(0, 40, 10)),
                      progress=True)
    assert report.n_samples == 40
    assert "diagnose" in capfd.readouterr().err


@pytest.mark.slow
def test_tsne_counts_its_two_phases_and_gives_the_same_map(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_progress, "MININTERVAL_S", 0.0)  # draw every report, however fast
    X = np.random.default_rng(0).normal(size=(300, 5))
    seen: list[int] = []
    on = Projector("tsne", progress=True, n_iter=200, early_exaggeration_iter=100).fit(X)
    err = capfd.readouterr().err
    assert "t-SNE early exaggeration" in err and "t-SNE embedding" in err
    assert "300/300" in err and "KL" in err
    mine = Projector("tsne", progress=True, n_iter=200, early_exaggeration_iter=100,
                     callbacks=lambda it, err, emb: seen.append(it),
                     callbacks_every_iters=40).fit(X)
    assert seen == [40, 80, 40, 80, 120, 160, 200]  # the user's callback, as they asked
    off = project(X, "tsne", progress=False, n_iter=200, early_exaggeration_iter=100)
    np.testing.assert_array_equal(on.result_.coords, off.coords)
    np.testing.assert_array_equal(mine.result_.coords, off.coords)
    assert "callbacks" not in on.result_.params
    # the fitted embedding keeps no bar: it pickles, and transform() draws nothing
    assert on.estimator_.gradient_descent_params["callbacks"] is None
    pickle.dumps(on.estimator_)
    capfd.readouterr()
    on.transform(X[:20])
    assert capfd.readouterr().err == ""


@pytest.mark.slow
def test_umap_says_it_compiles_then_counts_its_epochs(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("umap")
    from netxray import projection

    X = np.random.default_rng(0).normal(size=(120, 5))
    monkeypatch.setattr(projection, "_umap_compiled", False)
    on = project(X, "umap", n_neighbors=10, n_epochs=50, progress=True)
    err = capfd.readouterr().err
    assert "UMAP compiles its numba kernels" in err
    assert "UMAP epochs" in err and "50/50" in err
    assert "tqdm_kwds" not in on.params
    off = project(X, "umap", n_neighbors=10, n_epochs=50, progress=False)
    assert capfd.readouterr().err == ""
    np.testing.assert_array_equal(on.coords, off.coords)


def test_the_top_level_names_take_progress() -> None:
    import inspect

    for fn in (netxray.activations, netxray.collect_stats, netxray.diagnose, netxray.precheck,
               netxray.project, attribute_dataset):
        assert inspect.signature(fn).parameters["progress"].default is None, fn


@pytest.mark.slow
def test_in_a_jupyter_kernel_the_bar_is_a_widget_and_quick_calls_stay_quiet() -> None:
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    pytest.importorskip("ipywidgets")
    NotebookClient = pytest.importorskip("nbclient").NotebookClient
    import os
    import tempfile

    from notebook_runner import _kernel_manager

    setup = ("import torch, netxray\nfrom netxray import _progress\n"
             "model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()\n"
             "X = torch.randn(64, 4)\nprint(_progress.interactive())")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(setup),
        nbformat.v4.new_code_cell("s = netxray.collect_stats(model, X, batch_size=8, progress=True)"),
        nbformat.v4.new_code_cell("s = netxray.collect_stats(model, X, batch_size=8)"),
    ])
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    km = _kernel_manager()
    client = NotebookClient(nb, km=km, timeout=120, startup_timeout=120,
                            resources={"metadata": {"path": tempfile.mkdtemp()}})
    try:
        client.execute(env=env)
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    first, shown, quiet = (c.get("outputs", []) for c in nb.cells)
    assert [o.get("text") for o in first] == ["True\n"]  # a kernel counts as watching
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in shown)
    assert not [o for o in shown if o["output_type"] == "stream"]  # no warning, no text bar
    assert quiet == []  # the default, on a quick pass: nothing


def test_report_building_shows_one_bar_over_its_stages(capfd):
    from netxray import data
    from netxray.analysis import _STAGES, analyze

    train, test = data.moons(n_samples=80, noise=0.2, seed=0).split(test_size=0.25, seed=0)
    model = netxray.mlp([2, 4, 2], seed=0).eval()
    capfd.readouterr()
    analyze(model, train, test, progress=True)
    err = capfd.readouterr().err
    assert "report" in err and f"{len(_STAGES)}/{len(_STAGES)}" in err
    analyze(model, train, test, progress=False)
    assert capfd.readouterr().err == ""
