"""The ``netxray train``, ``report`` and ``export-tensorboard`` commands: record a watched
run, then draw it or hand it to TensorBoard.

Kept beside :mod:`netxray.cli` (which registers them) so that module stays one screenful of
commands per concern. Like the rest of the CLI, building the parser imports nothing heavy;
each command imports what it needs when it runs. Exit codes are the CLI's: ``train`` exits 1
when it raised an error-severity alarm (e.g. NaN/Inf), the verdict ``diagnose`` gives too.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from netxray.cli_options import add_debug, add_training_options, non_negative_int, positive

__all__ = ["add_watch_commands", "cmd_export_tensorboard", "cmd_report", "cmd_train"]


def add_watch_commands(sub: Any) -> None:
    """Add ``train`` and ``report`` to the subparsers ``sub``, with the demo's training
    options and the shared ``--debug``."""
    train = sub.add_parser("train", help="train the demo's MLP or a preset while netxray.watch "
                                         "records a run (see `netxray report`)",
                           epilog="Exit codes: 0 trained, no error-severity alarm; 1 trained, "
                                  "and an error-severity alarm was raised (e.g. NaN/Inf): the "
                                  "verdict, as for diagnose; 2 bad input (e.g. the "
                                  "run exists: --overwrite); 3 unexpected failure.")
    add_training_options(train)
    train.add_argument("--preset", help="train a counter-example from netxray.presets instead "
                                        "(its own recipe: the training options above are unused)")
    train.add_argument("--run", default=None,
                       help="the run's folder (default: runs/<preset or dataset>); the store "
                            "is RUN/run.sqlite")
    train.add_argument("--every", type=positive(int), default=1,
                       help="record statistics every K optimizer steps (default: 1; the loss "
                            "is recorded every step)")
    train.add_argument("--snapshot-every", type=non_negative_int, default=None,
                       help="snapshot the decision surface (2-D data) or the hidden states "
                            "every K steps; 0: never (default: about 12 snapshots for 2-D "
                            "data, none otherwise)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    report = sub.add_parser("report", help="write the report of a run recorded by `netxray "
                                           "train` or netxray.watch (also while it is written)")
    report.add_argument("run", metavar="RUN", help="the run's folder or its .sqlite file")
    report.add_argument("--out", default=None,
                        help="the HTML file to write (default: report.html in the run's "
                             "folder; for a run given as a file such as a.sqlite, a.html "
                             "beside it). It must end in .html; an existing file there is "
                             "replaced only if it is a netxray report")
    report.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out file that is not a netxray report "
                             "(never the run itself)")
    tb = sub.add_parser("export-tensorboard",
                        help="write a run as TensorBoard event files (scalars, histograms, "
                             "alarms as text)")
    tb.add_argument("run", metavar="RUN", help="the run's folder or its .sqlite file")
    tb.add_argument("dir", metavar="DIR", help="the folder to write (then: tensorboard "
                                               "--logdir DIR); it must hold no event files yet")
    tb.add_argument("--no-histograms", action="store_true",
                    help="scalars and alarms only (smaller, faster to load)")
    for p in (train, report, tb):
        add_debug(p)




def cmd_train(args: argparse.Namespace) -> int:
    """``netxray train``: train under a watch, print the run and its alarms."""
    from netxray.cli import OK, PROBLEMS, InputError, _say
    from netxray.store import RUN_FILE, _replaceable, run_file

    name = args.preset or Path(args.dataset).stem
    run = Path(args.run) if args.run is not None else Path("runs") / name
    file = run_file(run)
    if run.exists() and not run.is_dir() and run.suffix != ".sqlite":
        raise InputError(f"--run {run} is a file, not a folder; give a folder name")
    if file.is_dir():
        raise InputError(f"--run {run}: {file} is a folder; a run is FOLDER/{RUN_FILE} or a "
                         "FILE.sqlite: choose another --run")
    if file.exists() and not _replaceable(file):
        raise InputError(f"{file} exists and is not a netxray run, so netxray will not replace "
                         "it (not even with --overwrite): choose another --run")
    if file.exists() and not args.overwrite:
        raise InputError(f"a run already exists at {file}; choose another --run, or "
                         "pass --overwrite to replace it (the old run is kept until the new "
                         "one is trained)")
    # alarms are stored and printed below; other warnings become one clean line each
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        result = _train(args, run)
    nonfinite = any(f.kind == "nonfinite" for f in result.raised)
    for line in _warning_lines(caught, skip_nonfinite=nonfinite):
        _say(args, f"warning: {line}")
    print(f"Run: {result.path} ({result.steps} steps, final training loss "
          f"{result.final_loss:.4g}{', diverged' if result.diverged else ''})")
    raised = result.raised
    print(f"Alarms: {len(raised)}" + (":" if raised else " (none raised)"))
    for f in raised:
        where = f" in {f.layer}" if f.layer else ""
        print(f"  step {f.step}: {f.severity} {f.kind}{where}: {f.message}")
    print(f"Report: netxray report {result.path}")
    return PROBLEMS if result.errors else OK


def _train(args: argparse.Namespace, run: Path) -> Any:
    """Train the preset or the demo's MLP of ``args`` into ``run``; its ``train_watched``."""
    from netxray.cli import _check_preset, _reading, _say
    from netxray.store import run_file
    from netxray.train_watch import train_watched

    if args.preset is not None:
        _check_preset(args)
        _say(args, f"training the {args.preset!r} preset into {run} (seconds) ...")
        with _reading(writes={run_file(run): "--run"}):
            return train_watched(run, preset=args.preset, every=args.every,
                                 snapshot_every=args.snapshot_every, overwrite=args.overwrite)
    from netxray import demo

    config = demo.DemoConfig(
        dataset=args.dataset, hidden=args.hidden, activation=args.activation,
        epochs=args.epochs, lr=args.lr, seed=args.seed,
    )
    _say(args, f"training into {run} ...")
    with _reading(writes={run_file(run): "--run"}):
        return train_watched(run, config=config, every=args.every,
                             snapshot_every=args.snapshot_every, overwrite=args.overwrite,
                             progress=not args.no_progress)


def _warning_lines(caught: list[warnings.WarningMessage], *, skip_nonfinite: bool) -> list[str]:
    """The warnings raised while training, each distinct one once, as ``Category: message``
    without the source line Python's own display adds. netxray's NaN/Inf warnings (the
    snapshots of a diverged model) are left out where the nonfinite alarm already says so."""
    from netxray._warnings import NetxrayWarning

    lines: list[str] = []
    for w in caught:
        text = str(w.message).strip()
        text = text.splitlines()[0] if text else ""
        if skip_nonfinite and issubclass(w.category, NetxrayWarning) and "NaN/Inf" in text:
            continue
        line = f"{w.category.__name__}: {text}"
        if line not in lines:
            lines.append(line)
    return lines


def _stored_run(name: str) -> Path:
    """The store of run ``name`` (a folder or a .sqlite file), or a clear error."""
    from netxray.cli import InputError
    from netxray.store import run_file

    run = Path(name)
    file = run_file(run)
    if not file.is_file():
        hint = (f"{run} is a folder without a run.sqlite" if run.is_dir() else
                f"{run} does not exist" if not run.exists() else f"{run} is not a .sqlite file")
        raise InputError(f"no run at {run} ({hint}); record one with `netxray train --run "
                         f"{run}` or netxray.watch(model, {str(run)!r})")
    return file


def cmd_export_tensorboard(args: argparse.Namespace) -> int:
    """``netxray export-tensorboard RUN DIR``: the run as TensorBoard event files."""
    from netxray.cli import OK, InputError, _reading

    file = _stored_run(args.run)
    out = Path(args.dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"DIR {out} is a file; give a folder name")
    if out.is_dir() and any(out.glob("events.out.tfevents.*")):
        raise InputError(f"{out} already holds TensorBoard event files, and TensorBoard would "
                         "show both exports as one run's series: choose an empty folder")
    from netxray.store_tensorboard import export_tensorboard

    try:
        with _reading(writes={out: "DIR"}):
            export_tensorboard(file, out, histograms=not args.no_histograms)
    except ImportError as e:
        raise InputError(str(e)) from e
    print(f"TensorBoard: {out} (view it: tensorboard --logdir {out})")
    return OK


def _default_report(file: Path) -> Path:
    """Where ``netxray report`` writes by default: ``report.html`` beside a folder's
    ``run.sqlite``, else the run file's name with ``.html`` (``dir/a.sqlite`` ->
    ``dir/a.html``), so that two runs kept as files in one folder keep a report each."""
    from netxray.store import RUN_FILE

    return file.parent / "report.html" if file.name == RUN_FILE else file.with_suffix(".html")


def cmd_report(args: argparse.Namespace) -> int:
    """``netxray report RUN``: the run's report, drawn from its store."""
    from netxray.cli import OK, InputError, _reading

    file = _stored_run(args.run)
    out = Path(args.out) if args.out is not None else _default_report(file)
    if args.out == "-":
        raise InputError("--out - (standard output) is not supported; give an .html file name")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; give a file name such as {out / 'report.html'}")
    if out.suffix.lower() != ".html":
        raise InputError(f"--out {out}: the report is an HTML page; give a file name ending in "
                         f".html, such as {out.with_suffix('.html').name}")
    from netxray.cli_files import check_out, is_report

    check_out(out, inputs={"the run": file, "the run's -wal file": Path(f"{file}-wal"),
                           "the run's -shm file": Path(f"{file}-shm")},
              ours=is_report, what="a netxray report", overwrite=args.overwrite)
    from netxray.run_analysis import write_run_report

    with _reading(writes={out: "--out"}):
        path = write_run_report(file, out)
    print(f"Report: {path}")
    return OK
