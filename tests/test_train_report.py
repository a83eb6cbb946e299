"""`netxray train` records a watched run; `netxray report RUN` draws its Training section.

The section's numbers are checked against the run store read with sqlite3 directly (not
through netxray.store), so a reader bug and a drawing bug cannot cancel out.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3

import numpy as np
import pytest
import torch

import netxray
from netxray import cli
from netxray.report import training as section
from netxray.report.packing import tolerance, unpack
from netxray.report.plane_charts import blank_surface
from netxray.run_analysis import death_steps, read_run
from watch_helpers import train_steps


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def dying(tmp_path_factory):
    """The dying_relu preset trained by `netxray train`, and its CLI output."""
    path = tmp_path_factory.mktemp("runs") / "dying"
    code = cli.main(["train", "--preset", "dying_relu", "--run", str(path)])
    return path, code


def _db(path):
    return sqlite3.connect(f"file:{path / 'run.sqlite'}?mode=ro", uri=True)


def _layer_rows(con, layer, column):
    return con.execute(f"SELECT s.step, s.{column} FROM layer_stats s JOIN layers l "
                       "USING (layer_id) WHERE l.name = ? ORDER BY s.step", (layer,)).fetchall()


def _charts(tr):
    return {c["title"]: c for c in section.run_training_section(tr)["charts"]}


def _close(packed, expected):
    got = unpack(packed)
    exp = np.asarray(expected, dtype=np.float64)
    assert got.shape == exp.shape
    both = np.isfinite(exp)
    assert (np.isfinite(got) == both).all()
    assert (np.abs(got[both] - exp[both]) <= tolerance(packed, exp)[both]).all()


# --------------------------------------------------------------------------- the CLI


def test_train_records_a_run_and_report_writes_it(dying, capsys, tmp_path):
    path, code = dying
    assert code == 0  # the preset's alarms are warnings: trained, no error-severity alarm
    with _db(path) as con:
        assert con.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 30  # 30 full-batch epochs
        status = json.loads(con.execute("SELECT value FROM meta WHERE key='status'").fetchone()[0])
        assert status == "closed"
        assert con.execute("SELECT COUNT(*) FROM snapshots WHERE kind='boundary'").fetchone()[0] >= 8
    code, out, err = run_cli(capsys, "report", path, "--out", tmp_path / "r.html")
    assert code == 0 and out.strip() == f"Report: {tmp_path / 'r.html'}"
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '"id":"watch"' in page and '"title":"Training"' in page
    code, out, _ = run_cli(capsys, "report", path)  # default: report.html in the run's folder
    assert code == 0 and (path / "report.html").is_file()


def test_runs_kept_as_files_in_one_folder_get_a_report_each(dying, capsys, tmp_path):
    """`netxray report dir/a.sqlite` writes dir/a.html: a second run in the folder no longer
    overwrites the first one's report.html; a run folder (or its run.sqlite) keeps report.html."""
    path, _ = dying
    for name in ("a", "b"):
        shutil.copyfile(path / "run.sqlite", tmp_path / f"{name}.sqlite")
        code, out, err = run_cli(capsys, "report", tmp_path / f"{name}.sqlite")
        assert code == 0, err
        assert out.strip() == f"Report: {tmp_path / f'{name}.html'}"
    assert (tmp_path / "a.html").is_file() and (tmp_path / "b.html").is_file()
    assert not (tmp_path / "report.html").exists()
    (path / "report.html").unlink(missing_ok=True)
    code, out, _ = run_cli(capsys, "report", path / "run.sqlite")
    assert code == 0 and out.strip() == f"Report: {path / 'report.html'}"
    code, out, _ = run_cli(capsys, "report", tmp_path / "a.sqlite", "--out", tmp_path / "c.html")
    assert code == 0 and (tmp_path / "c.html").is_file()


def test_train_prints_the_run_and_its_alarms(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "--dataset", "xor", "--hidden", "8",
                             "--epochs", "12", "--lr", "0.5", "--every", "3",
                             "--snapshot-every", "0", "--no-progress", "--run", tmp_path / "xor")
    assert code == 0, err
    assert f"Run: {tmp_path / 'xor'} (12 steps" in out
    assert "Alarms:" in out and f"Report: netxray report {tmp_path / 'xor'}" in out
    with _db(tmp_path / "xor") as con:
        steps = [r[0] for r in _layer_rows(con, "act1", "frac_active")]
        config = dict(con.execute("SELECT key, value FROM config").fetchall())
        assert con.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == 0
    assert steps == [0, 3, 6, 9]  # --every 3
    assert json.loads(config["activation"]) == "relu" and json.loads(config["every"]) == 3


def test_an_error_severity_alarm_exits_1_and_is_printed(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "train", "--preset", "nan", "--snapshot-every", "0",
                           "--run", tmp_path / "nan")
    assert code == 1
    assert re.search(r"step \d+: error nonfinite", out), out
    with _db(tmp_path / "nan") as con:
        assert con.execute("SELECT COUNT(*) FROM findings WHERE kind='nonfinite' AND "
                           "severity='error'").fetchone()[0] >= 1


def test_a_diverged_run_is_reported_with_its_blank_surfaces(capsys, tmp_path):
    """lr 1e30 diverges: train exits 1 without raw warning lines, and the report is written
    (exit 0) with the snapshots whose surface is NaN/Inf blanked and marked, not dropped."""
    import subprocess
    import sys

    path = tmp_path / "diverged"
    argv = ["train", "--lr", "1e30", "--epochs", "20", "--no-progress", "--run", str(path)]
    # a process of its own: pytest would catch the warnings that Python prints to stderr
    code = f"import sys\nfrom netxray import cli\nsys.exit(cli.main({argv!r}))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1, done.stderr
    assert "error nonfinite" in done.stdout
    # no `.../_watch_snapshot.py:40: NetxrayWarning: ...`, no numpy overflow RuntimeWarning
    assert "Warning" not in done.stderr and ".py:" not in done.stderr, done.stderr
    code, out, err = run_cli(capsys, "report", path)
    assert code == 0, err
    assert (path / "report.html").is_file()
    html = (path / "report.html").read_text()
    with _db(path) as con:
        steps = [s for (s,) in con.execute("SELECT step FROM snapshots WHERE kind='boundary' "
                                           "ORDER BY step")]
    tr = read_run(path)
    bad = [int(s) for s, b in zip(tr.snapshot_steps, tr.boundaries, strict=True)
           if not np.isfinite(b.probs).all()]
    assert bad, "lr 1e30 makes the later surfaces NaN/Inf"
    note = f"the network's outputs are NaN/Inf from step {bad[0]}: no surface"
    assert note in html
    chart = _charts(tr)["The decision surface over training"]
    assert [f["title"] for f in chart["frames"]] == [f"step {s}" for s in steps]  # none dropped
    for s, frame, label in zip(steps, chart["frames"], chart["frame_labels"], strict=True):
        probs = unpack(frame["probs"])
        if s in bad:
            assert label == f"step {s} · {note}" and frame["description"] == note
            assert np.isnan(probs).all()  # blank, never drawn from the NaN outputs
        else:
            assert "NaN" not in label and np.isfinite(probs).all()
    assert f"{len(bad)} of the {len(steps)} snapshots are blank" in chart["description"]
    # the diverged losses are NaN in the store (not "no loss given"; raw SQL), marked on the
    # loss chart, and the header's final loss is NaN, as train printed it
    assert "final training loss nan, diverged" in done.stdout
    with _db(path) as con:
        nan_steps = [s for (s,) in con.execute("SELECT step FROM steps WHERE loss_is_nan = 1 "
                                               "ORDER BY step")]
        not_given = con.execute("SELECT COUNT(*) FROM steps WHERE loss IS NULL AND "
                                "loss_is_nan = 0").fetchone()[0]
        last = con.execute("SELECT MAX(step) FROM steps").fetchone()[0]
    assert nan_steps == list(range(nan_steps[0], last + 1)) and not_given == 0
    texts = [m["text"] for m in _charts(tr)["Loss, with the alarms"]["markers"]]
    assert f"the loss is NaN from step {nan_steps[0]} to {last}" in texts
    assert section.run_payload(tr)["meta"]["final loss"] == "NaN"


def test_a_surface_of_non_finite_probabilities_is_still_refused():
    xs = np.linspace(-1, 1, 3)
    probs = np.full((3, 3, 2), 0.5)
    probs[1, 1] = np.nan
    with pytest.raises(ValueError, match="probs has NaN/Inf"):
        section.charts.surface("s", xs, xs, probs)
    blank = blank_surface("s", xs, xs, "no surface", class_names=["a", "b"])
    assert blank["kind"] == "surface" and blank["description"] == "no surface"
    assert unpack(blank["probs"]).shape == (3, 3, 2) and np.isnan(unpack(blank["probs"])).all()


def test_train_prints_other_warnings_as_one_clean_line(capsys, tmp_path, monkeypatch):
    import warnings

    from netxray import train_watch

    real = train_watch.train_watched

    def noisy(*args, **kwargs):
        for _ in range(3):
            warnings.warn("something odd", RuntimeWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(train_watch, "train_watched", noisy)
    code, _, err = run_cli(capsys, "train", "--epochs", "2", "--no-progress", "--snapshot-every",
                           "0", "--run", tmp_path / "noisy")
    assert code in (0, 1)
    assert err.count("netxray train: warning: RuntimeWarning: something odd\n") == 1, err
    assert ".py:" not in err


def test_an_existing_run_is_not_overwritten_without_asking(dying, capsys):
    path, _ = dying
    before = (path / "run.sqlite").stat().st_mtime_ns
    code, _, err = run_cli(capsys, "train", "--preset", "dying_relu", "--run", path)
    assert code == 2 and "a run already exists" in err and "--overwrite" in err
    assert (path / "run.sqlite").stat().st_mtime_ns == before


def test_report_of_a_bad_run_path_exits_2_with_a_clear_message(capsys, tmp_path):
    code, _, err = run_cli(capsys, "report", tmp_path / "nowhere")
    assert code == 2
    assert f"no run at {tmp_path / 'nowhere'}" in err and "does not exist" in err
    assert "netxray train --run" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "report", tmp_path / "empty")
    assert code == 2 and "a folder without a run.sqlite" in err
    foreign = tmp_path / "notes.sqlite"
    foreign.write_text("not a database at all, just text" * 10)
    code, _, err = run_cli(capsys, "report", foreign)
    assert code == 2 and "not a netxray run" in err and "Traceback" not in err


def test_report_refuses_a_folder_as_out(dying, capsys, tmp_path):
    path, _ = dying
    code, _, err = run_cli(capsys, "report", path, "--out", tmp_path)
    assert code == 2 and "is a folder" in err


def test_a_path_that_cannot_be_written_says_cannot_write_and_which_option(dying, capsys,
                                                                         tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = run_cli(capsys, "train", "--preset", "dying_relu", "--run", afile / "sub")
    assert code == 2 and f"cannot write {afile / 'sub'}: Not a directory" in err
    assert "pick another path" in err and "cannot read" not in err and "Traceback" not in err
    path, _ = dying
    code, _, err = run_cli(capsys, "report", path, "--out", afile / "x.html")
    assert code == 2 and f"cannot write {afile / 'x.html'}: Not a directory; choose another " \
        "--out" in err
    mine = tmp_path / "mine.sqlite"  # the user's own database is never replaced
    sqlite3.connect(mine).execute("CREATE TABLE t (x)").connection.commit()
    code, _, err = run_cli(capsys, "train", "--preset", "dying_relu", "--run", mine,
                           "--overwrite")
    assert code == 2 and "is not a netxray run" in err


@pytest.mark.parametrize("argv", [["train", "--every", "0"], ["train", "--snapshot-every", "-1"],
                                  ["report"]])
def test_bad_train_and_report_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2


# ------------------------------------------------------------ the section vs the store


def test_loss_chart_and_alarm_markers_are_the_stores(dying):
    path, _ = dying
    chart = _charts(read_run(path))["Loss, with the alarms"]
    with _db(path) as con:
        steps, loss = zip(*con.execute("SELECT step, loss FROM steps ORDER BY step"), strict=True)
        events = con.execute("SELECT step, event, severity, kind, layer FROM findings "
                             "ORDER BY id").fetchall()
    _close(chart["x"], steps)
    _close(chart["series"][0]["values"], loss)
    assert len(events) >= 2
    assert [(m["x"], m["severity"]) for m in chart["markers"]] == [
        (float(s), sev if ev == "raised" else "ok") for s, ev, sev, _, _ in events]
    for m, (_, ev, _, kind, layer) in zip(chart["markers"], events, strict=True):
        assert m["text"].startswith(f"{ev} {kind} in {layer}: ")
    table = _charts(read_run(path))["Alarms"]
    assert [tuple(r[:5]) for r in table["rows"]] == [
        (s, ev, sev, kind, layer) for s, ev, sev, kind, layer in events]


def test_per_layer_lines_are_the_stores(dying):
    path, _ = dying
    charts = _charts(read_run(path))
    with _db(path) as con:
        for title, column in [("Activity per layer", "frac_active"), ("Scale per layer", "scale"),
                              ("Gradient RMS per layer", "grad_rms"),
                              ("Dead units per layer", "dead")]:
            chart = charts[title]
            assert [s["name"] for s in chart["series"]] == ["act1", "act2"]
            for s in chart["series"]:
                rows = _layer_rows(con, s["name"], column)
                _close(chart["x"], [r[0] for r in rows])
                _close(s["values"], [np.nan if r[1] is None else r[1] for r in rows])


def test_the_colorful_dimension_is_each_steps_histogram(dying):
    path, _ = dying
    charts = _charts(read_run(path))
    with _db(path) as con:
        for layer in ("act1", "act2"):
            chart = charts[f"{layer}: activation histogram over training"]
            rows = _layer_rows(con, layer, "hist")
            hist = np.stack([np.frombuffer(h, dtype="<i8") for _, h in rows])  # (steps, bins + 2)
            edges = np.frombuffer(con.execute("SELECT hist_edges FROM layers WHERE name = ?",
                                              (layer,)).fetchone()[0], dtype="<f8")
            assert hist.shape[1] == len(edges) + 1
            _close(chart["matrix"], np.log10(1 + hist.T[::-1]))  # top row: above the range
            assert chart["col_labels"] == [str(s) for s, _ in rows]
            assert chart["row_labels"][0] == f"above {edges[-1]:.3g}"
            assert chart["row_labels"][-1] == f"below {edges[0]:.3g}"


def _independent_deaths(con, layer):
    """Each unit's death step from the raw BLOBs: the step after its last nonzero activity."""
    units = con.execute("SELECT units FROM layers WHERE name = ?", (layer,)).fetchone()[0]
    rows = con.execute("SELECT s.step, s.activity FROM unit_stats s JOIN layers l "
                       "USING (layer_id) WHERE l.name = ? ORDER BY s.step", (layer,)).fetchall()
    steps = [s for s, _ in rows]
    act = np.stack([np.frombuffer(a, dtype="<f4") for _, a in rows])
    deaths = {}
    for u in range(units):
        alive = [i for i in range(len(steps)) if act[i, u] != 0]
        last = alive[-1] if alive else -1
        if last < len(steps) - 1:
            deaths[u] = steps[last + 1]
    return steps, act, deaths


def test_the_death_timeline_marks_each_unit_where_it_died(dying):
    path, _ = dying
    tr = read_run(path)
    charts = _charts(tr)
    with _db(path) as con, netxray.open_run(path) as run:
        for layer in ("act1", "act2"):
            steps, act, deaths = _independent_deaths(con, layer)
            assert deaths, "the dying_relu preset kills units"
            assert run.unit_death_steps(layer) == deaths  # the store's reader agrees
            assert {u: int(s) for u, s in enumerate(tr.deaths[layer]) if s >= 0} == deaths
            chart = charts[f"{layer}: unit activity, and when each unit died"]
            units = [int(re.match(r"unit (\d+)", lab).group(1)) for lab in chart["row_labels"]]
            dead_first = sorted(deaths, key=lambda u: deaths[u])
            assert sorted(units[:len(deaths)]) == sorted(deaths)  # every dead unit on top ...
            assert [deaths[u] for u in units[:len(deaths)]] == [deaths[u] for u in dead_first]
            for u, lab in zip(units, chart["row_labels"], strict=True):  # ... labelled
                assert lab == (f"unit {u} · died at step {deaths[u]}" if u in deaths
                               else f"unit {u}")
            _close(chart["matrix"], act[:, units].T)
            assert f"{len(deaths)} of {act.shape[1]} units died" in chart["description"]


def test_gradient_rms_by_depth_is_log10_of_the_stores(dying):
    path, _ = dying
    chart = _charts(read_run(path))["Gradient RMS by depth over training (log10)"]
    assert chart["row_labels"] == ["act1", "act2"]
    with _db(path) as con:
        expected = [[np.log10(g) for _, g in _layer_rows(con, n, "grad_rms")]
                    for n in ("act1", "act2")]
    _close(chart["matrix"], expected)


def test_the_boundary_snapshots_are_a_slider(dying):
    path, _ = dying
    chart = _charts(read_run(path))["The decision surface over training"]
    with _db(path) as con:
        steps = [s for (s,) in con.execute("SELECT step FROM snapshots WHERE kind='boundary' "
                                           "ORDER BY step")]
    assert chart["kind"] == "slider" and chart["frame_kind"] == "surface"
    assert [f["title"] for f in chart["frames"]] == [f"step {s}" for s in steps]
    assert all(lab.startswith(f"step {s} · probe acc ")
               for lab, s in zip(chart["frame_labels"], steps, strict=True))


def test_heatmaps_keep_at_most_max_columns_real_steps(dying, monkeypatch):
    path, _ = dying
    monkeypatch.setattr(section, "MAX_COLUMNS", 7)
    tr = read_run(path)
    chart = section.histogram_image(tr, "act1")
    with _db(path) as con:
        rows = _layer_rows(con, "act1", "hist")
    idx = np.unique(np.linspace(0, len(rows) - 1, 7).round().astype(int))
    assert chart["col_labels"] == [str(rows[i][0]) for i in idx]
    assert chart["col_labels"][0] == "0" and chart["col_labels"][-1] == str(rows[-1][0])
    hist = np.stack([np.frombuffer(rows[i][1], dtype="<i8") for i in idx])
    _close(chart["matrix"], np.log10(1 + hist.T[::-1]))


def test_markers_are_checked():
    spec = section.charts.lines("l", [0, 1], {"a": [1, 2]})
    with pytest.raises(ValueError, match="severity"):
        section.with_markers(spec, [{"x": 1, "severity": "bad", "text": "t"}])
    with pytest.raises(ValueError, match="finite number"):
        section.with_markers(spec, [{"x": float("nan"), "severity": "error", "text": "t"}])
    with pytest.raises(ValueError, match="lines chart"):
        section.with_markers(section.charts.bars("b", ["a"], [1]), [])


# ------------------------------------------------------------ a run still being written


def test_a_run_still_being_written_is_read_as_committed(tmp_path):
    X = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).long()
    model = netxray.mlp([2, 8, 2], seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with netxray.watch(model, tmp_path / "live", every=2, alarms=lambda f, s: None) as w:
        train_steps(model, X, y, opt, w, 9)
        w.flush()
        tr = read_run(tmp_path / "live")  # the writer is still open
        out = section.write_run_report(tr, tmp_path / "live.html")
    assert tr.status == "running" and tr.last_step == 8
    assert list(tr.layer_stats["act1"].step) == [0, 2, 4, 6, 8]
    assert "still being written" in section.run_training_section(tr)["description"]
    assert out.is_file()
    assert np.array_equal(death_steps(tr.unit_stats["act1"]), tr.deaths["act1"])


def test_a_run_with_no_step_yet_draws_an_empty_section(tmp_path):
    model = netxray.mlp([2, 4, 2], seed=0)
    with netxray.watch(model, tmp_path / "new", alarms=lambda f, s: None) as w:
        w.flush()
        tr = read_run(tmp_path / "new")
    assert tr.last_step is None
    titles = [c["title"] for c in section.run_training_section(tr)["charts"]]
    assert titles == ["Alarms"]
    section.write_run_report(tr, tmp_path / "new.html")
