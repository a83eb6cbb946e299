"""The CLI never destroys what it was given: ``--out`` is never an input, an existing file
is replaced only when netxray wrote it (or with ``--overwrite``), and a failed ``train``
leaves the old run as it was and no stub behind."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from netxray import cli
from netxray.cli import INTERRUPTED
from test_cli import run


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A 3-step run recorded by `netxray train`."""
    path = tmp_path_factory.mktemp("runs") / "small"
    code = cli.main(["train", "--epochs", "3", "--snapshot-every", "0", "--no-progress",
                     "--run", str(path)])
    assert code == 0
    return path


@pytest.fixture
def user_files(tmp_path):
    """A model file, its data as .npz and .csv, and a source file that is not netxray's."""
    (tmp_path / "net.py").write_text(textwrap.dedent("""
        from torch import nn

        def make():
            return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    """))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)), rng.integers(0, 2, 40)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    (tmp_path / "d.csv").write_text("a,b,label\n" + "".join(
        f"{a},{b},{c}\n" for (a, b), c in zip(X, y, strict=True)))
    (tmp_path / "victim.py").write_text("print('my own code')\n")
    return tmp_path


def _project(capsys, d, *extra, data="d.npz"):
    return run(capsys, "project", "--model", f"{d}/net.py:make", "--data", d / data,
               "--layer", "1", *extra)


# ------------------------------------------------------------------ report --out


def test_report_out_is_never_the_run_itself(capsys, small_run):
    store = small_run / "run.sqlite"
    before = store.read_bytes()
    for argv in (["--out", store], ["--out", store, "--overwrite"]):
        code, _, err = run(capsys, "report", small_run, *argv)
        assert code == 2, err
        assert store.read_bytes() == before


def test_report_out_must_be_html_and_replaces_only_netxray_reports(capsys, small_run, tmp_path):
    victim = tmp_path / "victim.py"
    victim.write_text("print('my own code')\n")
    code, _, err = run(capsys, "report", small_run, "--out", victim)
    assert code == 2 and "ending in .html" in err
    assert victim.read_text() == "print('my own code')\n"
    page = tmp_path / "page.html"
    page.write_text("<html>my own page</html>")
    code, _, err = run(capsys, "report", small_run, "--out", page)
    assert code == 2 and "is not a netxray report" in err and "--overwrite" in err
    assert page.read_text() == "<html>my own page</html>"
    code, _, err = run(capsys, "report", small_run, "--out", page, "--overwrite")
    assert code == 0, err
    assert '<meta name="generator" content="netxray">' in page.read_text()
    for _ in range(2):  # a netxray report is replaced without asking: run it again and again
        code, _, err = run(capsys, "report", small_run)
        assert code == 0, err
    assert (small_run / "report.html").is_file()


# ------------------------------------------------------------------ project --out


@pytest.mark.parametrize("data", ["d.npz", "d.csv"])
def test_project_out_is_never_its_data(capsys, user_files, data):
    before = (user_files / data).read_bytes()
    link = user_files / f"link{(user_files / data).suffix}"
    link.symlink_to(user_files / data)
    for out in (user_files / data, link, user_files / "sub" / ".." / data):
        for extra in ([], ["--overwrite"]):
            code, _, err = _project(capsys, user_files, "--out", out, *extra, data=data)
            assert code == 2, err
            assert "the --data file, which this command reads" in err
            assert (user_files / data).read_bytes() == before


def test_project_replaces_only_its_own_coordinates(capsys, user_files):
    mine = user_files / "mine.csv"
    mine.write_text("a,b\n1,2\n")
    code, _, err = _project(capsys, user_files, "--out", mine)
    assert code == 2 and "is not coordinates netxray project wrote" in err
    assert mine.read_text() == "a,b\n1,2\n"
    for suffix in (".csv", ".json", ".npz"):
        out = user_files / f"coords{suffix}"
        for _ in range(2):  # its own output is replaced without asking
            code, _, err = _project(capsys, user_files, "--out", out)
            assert code == 0, err
    code, _, err = _project(capsys, user_files, "--out", mine, "--overwrite")
    assert code == 0, err
    assert mine.read_text().startswith("index,pca1,pca2,label")


# ------------------------------------------------------------------ train --overwrite


def _train(capsys, run_path, *extra):
    return run(capsys, "train", "--epochs", "3", "--snapshot-every", "0", "--no-progress",
               "--run", run_path, *extra)


def _snapshot(folder):
    """Every file in ``folder`` with its bytes: what a failed command must leave as it was."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_failed_overwrite_keeps_the_old_run_and_reads_the_new_one_live(capsys, tmp_path,
                                                                         monkeypatch):
    """The new run is written at the run's path (readers follow it while it trains); the
    old one waits aside and comes back when training fails."""
    from netxray import store, training

    old = tmp_path / "old.sqlite"
    assert _train(capsys, old)[0] == 0
    before = _snapshot(tmp_path)
    real, seen = training.train, {}

    def fails_half_way(model, data, **kw):
        real(model, data, **{**kw, "epochs": 2})
        kw["watch"].flush()
        with store.open_run(old) as live:  # the path is the new run, live
            seen["steps"] = len(live.steps.step)
            seen["epochs"] = live.config["epochs"]
        raise RuntimeError("kaboom in the training loop")

    monkeypatch.setattr(training, "train", fails_half_way)
    code, _, err = _train(capsys, old, "--overwrite", "--epochs", "7")
    assert code == 3 and "kaboom in the training loop" in err
    assert seen == {"steps": 2, "epochs": 7}
    assert _snapshot(tmp_path) == before  # the old run, byte for byte; no backup, no stub
    monkeypatch.setattr(training, "train", real)
    code, out, err = _train(capsys, old, "--overwrite", "--epochs", "5")
    assert code == 0, err
    assert "(5 steps" in out and sorted(_snapshot(tmp_path)) == ["old.sqlite"]


def test_an_interrupted_new_run_keeps_what_it_recorded(capsys, tmp_path, monkeypatch):
    """Ctrl-C after some steps, without --overwrite: the partial run stays, readable up to
    its last commit (as after a crash); it is not deleted with the hour it took."""
    from netxray import store, training

    run = tmp_path / "new.sqlite"
    real = training.train

    def interrupted(model, data, **kw):
        real(model, data, **{**kw, "epochs": 3})
        kw["watch"].flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    code, _, err = _train(capsys, run, "--epochs", "9")
    assert code == INTERRUPTED and "interrupted" in err
    with store.open_run(run) as kept:
        assert len(kept.steps.step) == 3


def _small_disk(monkeypatch, pages):
    """SQLite files of at most ``pages`` pages: SQLite itself then fails with its own
    SQLITE_FULL ("database or disk is full"), as on a full disk."""
    from netxray import store

    real = store._pragmas

    def limited(con):
        real(con)
        con.execute(f"PRAGMA max_page_count={pages}")

    monkeypatch.setattr(store, "_pragmas", limited)


def test_a_full_disk_exits_2_keeps_the_old_run_and_leaves_no_stub(capsys, tmp_path, monkeypatch):
    old = tmp_path / "old.sqlite"
    assert _train(capsys, old)[0] == 0
    before = _snapshot(tmp_path)
    _small_disk(monkeypatch, 30)  # the schema fits, 300 epochs of statistics do not
    code, _, err = _train(capsys, old, "--overwrite", "--epochs", "300")
    assert code == 2, err
    assert f"cannot write {old}: database or disk is full; free some space" in err
    assert "--run" in err and "bug" not in err
    assert _snapshot(tmp_path) == before
    new = tmp_path / "new"
    _small_disk(monkeypatch, 3)  # full before the first commit: no stub
    code, _, err = _train(capsys, new, "--epochs", "300")
    assert code == 2 and "database or disk is full" in err, err
    assert not (new / "run.sqlite").exists() and not list(new.glob("*"))
    _small_disk(monkeypatch, 30)  # full while training: what was committed is kept
    code, _, err = _train(capsys, new, "--epochs", "300")
    assert code == 2 and "database or disk is full" in err, err
    from netxray.store import open_run

    if (new / "run.sqlite").exists():  # (whether a commit came before the disk was full
        with open_run(new) as kept:    # depends on the writer's timing) never a stub
            assert 0 < len(kept.steps.step) < 300
    else:
        assert not list(new.glob("*"))
    monkeypatch.undo()
    code, _, err = _train(capsys, new, "--overwrite")  # replaced as any run is
    assert code == 0, err


def test_a_read_only_store_exits_2_and_leaves_no_stub(capsys, tmp_path, monkeypatch):
    from netxray import store

    real = store._pragmas

    def read_only(con):
        real(con)
        con.execute("PRAGMA query_only=1")  # SQLite's own SQLITE_READONLY on the first write

    monkeypatch.setattr(store, "_pragmas", read_only)
    path = tmp_path / "ro.sqlite"
    code, _, err = _train(capsys, path)
    assert code == 2, err
    assert f"cannot write {path}: attempt to write a readonly database; the disk is read-only" \
        in err
    assert list(tmp_path.iterdir()) == []


def test_a_folder_as_the_run_file_exits_2_saying_so(capsys, tmp_path, monkeypatch):
    folder = tmp_path / "dd.sqlite"
    folder.mkdir()
    for extra in ([], ["--overwrite"]):
        code, _, err = _train(capsys, folder, *extra)
        assert code == 2 and "is a folder" in err and "already exists" not in err, err
    import errno

    from netxray.store import RunDB

    with pytest.raises(IsADirectoryError) as e:
        RunDB(folder)
    assert e.value.errno == errno.EISDIR and e.value.filename == str(folder)
    # an OSError of netxray's own with a message and no errno is bad input, not a crash
    from netxray import train_watch

    def refuses(*args, **kwargs):
        raise IsADirectoryError("somewhere is a folder: pick another path")

    monkeypatch.setattr(train_watch, "train_watched", refuses)
    code, _, err = _train(capsys, tmp_path / "r")
    assert code == 2 and "somewhere is a folder: pick another path" in err and "bug" not in err


# ------------------------------------------------------------------ --out folders


def _names(folder):
    return {p.name for p in folder.iterdir()}


def _owned(command, names):
    import fnmatch

    from netxray.cli_files import OUTPUTS

    return {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in OUTPUTS[command])}


def test_a_demo_folder_never_mixes_two_runs(capsys, tmp_path):
    """A diverged demo writes report.html only: into the folder of a healthy demo it leaves
    what it wrote into an empty one, plus the user's own files, and nothing of the old run."""
    folder, alone = tmp_path / "out", tmp_path / "alone"
    healthy = ["demo", "--no-progress", "--epochs", "5", "--out", folder]
    assert run(capsys, *healthy)[0] == 0
    written = _names(folder)
    assert "results.npz" in written and len(written) > 3
    assert _owned("demo", written) == written  # every file demo writes is one it owns
    (folder / "notes.txt").write_text("mine")
    (folder / "figure.png").write_text("mine too")
    diverged = ["demo", "--no-progress", "--epochs", "20", "--lr", "1e30"]
    code, _, err = run(capsys, *diverged, "--out", folder)
    assert code == 0, err
    assert run(capsys, *diverged, "--out", alone)[0] == 0
    assert _names(alone) == {"report.html"}
    assert _names(folder) == _names(alone) | {"notes.txt", "figure.png"}
    assert (folder / "notes.txt").read_text() == "mine"


def test_an_explain_folder_keeps_only_this_explanations_files(capsys, user_files):
    folder = user_files / "ex"
    folder.mkdir()
    for stale in ("token_scores.csv", "token_stats.csv", "text.npz"):  # a text explanation's
        (folder / stale).write_text("old")
    (folder / "notes.txt").write_text("mine")
    code, out, err = run(capsys, "explain", "--model", f"{user_files}/net.py:make", "--data",
                         user_files / "d.npz", "--out", folder)
    assert code == 0, err
    written = {p.split("/")[-1] for p in out.split()}
    assert written and _owned("explain", written) == written
    assert _names(folder) == written | {"notes.txt"}


def test_an_sqlite_error_while_reading_a_run_is_not_called_a_write(capsys, small_run,
                                                                   monkeypatch):
    """`report` only reads the run with SQLite: its "unable to open database file" is not
    "cannot write report.html" (the HTML is written by netxray, not SQLite)."""
    import sqlite3

    from netxray import run_analysis

    def cannot_open(*args, **kwargs):
        e = sqlite3.OperationalError("unable to open database file")
        e.sqlite_errorcode = sqlite3.SQLITE_CANTOPEN
        raise e

    monkeypatch.setattr(run_analysis, "write_run_report", cannot_open)
    code, _, err = run(capsys, "report", small_run)
    assert "cannot write" not in err and code == 3
