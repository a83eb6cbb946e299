"""The CLI never destroys what it was given: ``--out`` is never an input, an existing file
is replaced only when netxray wrote it (or with ``--overwrite``), and a failed ``train``
leaves the old run as it was and no stub behind."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from netxray import cli


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


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
