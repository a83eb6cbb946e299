"""The ``netxray`` command: parses, calls the library, prints. No logic of its own.

Exit codes, for a CI gate: 0 fine (``diagnose``: no error-severity problem), 1 a verdict
(``diagnose`` found error-severity problems), 2 bad input (a message names the problem and
the fix; a file that cannot be written, e.g. a full or read-only disk, is bad input too:
"cannot write PATH: reason"), 3 an unexpected failure (a short message; ``--debug`` shows
the traceback). 130 when interrupted.

``--help`` and argument errors answer without importing torch: the parser is built from
literals only, and each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from netxray.cli_errors import InputError, crash_message, write_error
from netxray.cli_errors import reading as _reading
from netxray.cli_files import clear_outputs
from netxray.cli_options import add_debug, add_model_options, add_training_options, seed
from netxray.cli_serve import add_serve_command, cmd_serve
from netxray.cli_watch import add_watch_commands, cmd_export_tensorboard, cmd_report, cmd_train

OK, PROBLEMS, BAD_INPUT, CRASH, INTERRUPTED = 0, 1, 2, 3, 130

#: the attribution methods ``netxray explain`` offers (names of ``netxray.attribution.METHODS``
#: that need no option beyond the target); a literal so that ``--help`` needs no torch
CLI_METHODS = (
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "smoothgrad",
    "feature_ablation",
)

#: what ``project --out`` writes, by suffix (``-``: CSV on standard output)
PROJECT_FORMATS = (".csv", ".json", ".npz")

def build_parser() -> argparse.ArgumentParser:
    """The whole command line, from literals: building it imports nothing heavy."""
    parser = argparse.ArgumentParser(
        prog="netxray", description="See inside neural networks and find out why one trains badly.",
        epilog="Exit codes: 0 fine; 1 diagnose found error-severity problems; 2 bad input "
               "(the message says what to fix; a full or read-only disk too); 3 unexpected "
               "failure (--debug shows the traceback).",
    )
    parser.add_argument("--version", action="version", version=f"netxray {_version()}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="train the lecture's MLP, print its table, write a report")
    add_training_options(demo)
    demo.add_argument("--preset", help="train a counter-example instead (see `netxray presets`; "
                                       "biased_resumes and fair_resumes are text classifiers)")
    demo.add_argument("--out", default="netxray-out", help="output folder (default: netxray-out)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    diag = sub.add_parser("diagnose", help="find dead, saturated, exploding or vanishing units")
    add_model_options(diag)
    diag.add_argument("--json", action="store_true", help="print the findings as JSON")
    diag.add_argument("--out", default=None, help="also write a report into this folder")

    explain = sub.add_parser("explain", help="attributions: which inputs drive the predictions")
    add_model_options(explain)
    explain.add_argument("--method", default=None, choices=CLI_METHODS,
                         help="default: saliency (signed gradients); for token ids "
                              "integrated_gradients on the embedding (also: input_x_gradient, "
                              "saliency)")
    explain.add_argument("--layer", default=None,
                         help="token ids: the layer attributed to (default: the model's "
                              "nn.Embedding)")
    explain.add_argument("--target", default="pred",
                         help="class index or 'pred' (the predicted class; default)")
    explain.add_argument("--out", default="netxray-explain", help="output folder")

    proj = sub.add_parser("project", help="project a layer's hidden states to 2-D")
    add_model_options(proj)
    proj.add_argument("--layer", default=None,
                      help="dotted layer name (default: the last activation layer)")
    proj.add_argument("--method", default="pca", choices=["pca", "tsne", "umap"])
    proj.add_argument("--seed", type=seed, default=0, help="random_state, 0..2**32-1 (default: 0)")
    proj.add_argument("--out", default="netxray-projection.csv",
                      help="the coordinates with labels, in the format the suffix names: "
                           ".csv, .json or .npz; - writes CSV to standard output. An existing "
                           "file is replaced only if netxray project wrote it")
    proj.add_argument("--overwrite", action="store_true",
                      help="replace an existing --out file that netxray did not write (never "
                           "--data, --weights or the --model file)")

    presets = sub.add_parser("presets", help="list the counter-example presets")
    datasets = sub.add_parser("datasets", help="list the built-in datasets")
    for p in (demo, diag, explain, proj, presets, datasets):
        add_debug(p)
    add_watch_commands(sub)
    add_serve_command(sub)
    return parser


def _version() -> str:
    from netxray import __version__  # the package's __init__ is light: no torch

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    name = f"netxray {args.command}"
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except (InputError, ValueError, FileNotFoundError) as e:
        _traceback(args)
        print(f"{name}: error: {e}", file=sys.stderr)
        return BAD_INPUT
    except Exception as e:
        _traceback(args)
        option = {"train": "--run", "export-tensorboard": "DIR"}.get(args.command, "--out")
        text = write_error(e, "the output", option, store=args.command == "train")
        print(crash_message(name, e) if text is None else f"{name}: error: {text}",
              file=sys.stderr)
        return CRASH if text is None else BAD_INPUT


def _traceback(args: argparse.Namespace) -> None:
    if getattr(args, "debug", False):
        import traceback

        traceback.print_exc()


def _say(args: argparse.Namespace, text: str) -> None:
    """A progress line on stderr, before a stretch that would otherwise be silent."""
    print(f"netxray {args.command}: {text}", file=sys.stderr, flush=True)


def _check_preset(args: argparse.Namespace, *, text: bool = False) -> None:
    """Refuse an unknown ``--preset`` before any work or progress line; ``text``: the
    command also runs the text presets, so the message lists them too."""
    if args.preset is None:
        return
    from netxray import presets, resumes

    if args.preset in presets.names() or (text and args.preset in resumes.names()):
        return
    try:
        presets.get(args.preset)
    except ValueError as e:
        more = f" Text presets: {', '.join(resumes.names())}." if text else ""
        raise InputError(f"{e}{more}") from None


def _folder(args: argparse.Namespace) -> Path:
    """``--out`` as a folder: refuse ``-`` and an existing file before any work is done."""
    out = Path(args.out)
    if args.out == "-":
        raise InputError(f"--out - (standard output) is for one file; {args.command} writes a "
                         "folder of files. Give a folder name")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder; give a folder name")
    return out


def _cmd_demo(args: argparse.Namespace) -> int:
    out = _folder(args)
    _check_preset(args, text=True)
    from netxray import demo

    if args.preset is not None:
        from netxray import resumes

        if args.preset in resumes.names():
            return _text_demo(args, out)
        _say(args, f"training the {args.preset!r} preset (seconds) ...")
        run = demo.run_preset(args.preset)
    else:
        config = demo.DemoConfig(
            dataset=args.dataset, hidden=args.hidden, activation=args.activation,
            epochs=args.epochs, lr=args.lr, seed=args.seed,
        )
        with _reading():
            run = demo.run(config, progress=not args.no_progress)
    print(demo.lecture_table(run))
    print()
    print(run.health.summary())
    _say(args, f"writing the report and its pictures to {out}/ ...")
    with _reading(writes={out: "--out"}):
        clear_outputs(out, "demo")
    report = demo.write_outputs(run, out, progress=False if args.no_progress else None)
    print()
    print(f"Report: {report}")
    return OK


def _text_demo(args: argparse.Namespace, out: Path) -> int:
    """``demo --preset`` of a text preset: accuracy, top tokens, flip rate; report, summary."""
    from netxray import text_demo

    _say(args, f"training the {args.preset!r} text preset and looking inside it (seconds) ...")
    run = text_demo.run(args.preset)
    print(text_demo.lines(run))
    with _reading(writes={out: "--out"}):
        clear_outputs(out, "demo")
    print(f"\nReport: {text_demo.write_outputs(run, out)}\nSummary: {out / 'summary.json'}")
    return OK


def _load_target(args: argparse.Namespace):  # -> (model, Dataset, number of classes)
    """The model and data the command runs on, checked: the model takes the data's inputs
    and outputs a class for every label (else exit 2, naming the problem)."""
    from netxray import data, loading, presets
    from netxray._checks import check_model_input, model_dtype

    if args.model is not None:
        if args.data is None:
            raise InputError("--model needs --data FILE.npz|FILE.csv to run the model on")
        with _reading():
            model = loading.load_model(args.model, args.weights)
            if args.data.endswith(".csv"):
                ds = data.load_csv(args.data, label=args.label if args.label is not None else -1)
            else:
                ds = data.load(args.data)
    else:
        if args.weights is not None or args.data is not None:
            raise InputError("--weights and --data go with --model")
        _check_preset(args)
        name = args.preset or "healthy"
        _say(args, f"training the {name!r} preset (seconds) ...")
        run = presets.get(name).run()
        model, ds = run.model, run.data
    X, y = ds.tensors(model_dtype(model))
    n_classes = check_model_input(model, X, y)
    return model, ds, n_classes


def _token_data(args: argparse.Namespace) -> bool:
    """Whether ``--data`` holds token ids (an .npz with ``input_ids``); ``--vocab`` and
    ``--layer`` go with those only."""
    from netxray import data

    tokens = args.model is not None and args.data is not None and data.is_token_file(args.data)
    if not tokens:
        for opt in ("vocab", "layer"):
            if getattr(args, opt, None) is not None:
                raise InputError(f"--{opt} goes with --model and --data FILE.npz holding token "
                                 "ids (input_ids, attention_mask, labels)")
    return tokens


def _load_tokens(args: argparse.Namespace):  # -> (model, TokenDataset, number of classes)
    """A model on token ids and its data, checked: the model takes the arrays as keyword
    arguments and outputs (samples, classes) scores, a class for every label."""
    from netxray import data, loading
    from netxray.batches import check_output_rows, pick_output, read_batches

    with _reading():
        model = loading.load_model(args.model, args.weights)
        ds = data.load_tokens(args.data, vocab=args.vocab)
    import torch

    first = next(read_batches(ds.batches(), 8)).to(model)
    try:
        with torch.no_grad():
            out = pick_output(first.run(model))
    except (RuntimeError, TypeError, IndexError) as e:
        raise InputError(
            f"the model cannot take the arrays of {args.data} ({', '.join(ds.batches())}) as "
            f"keyword arguments: {type(e).__name__}: {e}. Name the arrays after the forward's "
            "parameters (input_ids, attention_mask), and keep ids below the vocabulary size"
        ) from e
    check_output_rows(first, out)
    if out.ndim != 2:
        raise InputError(f"the model outputs shape {tuple(out.shape)}; netxray needs "
                         "(samples, classes) scores, e.g. a sequence classifier's logits")
    k = int(out.shape[1])
    if ds.labels is not None and len(ds.labels) and int(ds.labels.max()) >= k:
        raise InputError(f"the labels go up to {int(ds.labels.max())} but the model outputs "
                         f"{k} classes; labels must be 0..{k - 1}")
    return model, ds, k


def _cmd_diagnose(args: argparse.Namespace) -> int:
    out = _folder(args) if args.out else None
    from netxray._checks import model_dtype
    from netxray.health import diagnose, render_findings

    if _token_data(args):
        model, ds, _ = _load_tokens(args)
        report = diagnose(model, ds.batches())
    else:
        model, ds, _ = _load_target(args)
        report = diagnose(model, ds.tensors(model_dtype(model)))
    untrained = args.model is not None and args.weights is None
    note = ("note: no --weights given, so these are the weights the factory made: untrained "
            "(random) unless the factory loads trained ones. A verdict about an untrained "
            "model says little about the trained one; pass --weights FILE")
    if args.json:
        print(report.to_json(indent=1))
    elif sys.stdout.isatty():
        from rich.console import Console

        Console().print(render_findings(report))
    else:
        print(report.summary())
    if untrained:
        print(note, file=sys.stderr if args.json else sys.stdout)
    if out is not None:
        from netxray.analysis import write_health_report

        with _reading(writes={out: "--out"}):
            clear_outputs(out, "diagnose")
        path = write_health_report(model, ds, report, out)
        print(f"Report: {path}", file=sys.stderr if args.json else sys.stdout)
    return report.exit_code


def _cmd_explain(args: argparse.Namespace) -> int:
    out = _folder(args)
    target: int | str = args.target if args.target == "pred" else _int(args.target, "--target")
    from netxray.analysis import TEXT_METHODS, write_explanation, write_text_explanation

    tokens = _token_data(args)
    if tokens:
        method = args.method or "integrated_gradients"
        if method not in TEXT_METHODS:
            raise InputError(f"--method {method} cannot attribute token ids; use one of "
                             f"{', '.join(TEXT_METHODS)} (attributions to the embedding)")
        model, ds, k = _load_tokens(args)
    else:
        method = args.method or "saliency"
        model, ds, k = _load_target(args)
    if isinstance(target, int):
        if not 0 <= target < k:
            raise InputError(
                f"--target {target} but the model outputs {k} classes; pass a class index "
                f"0..{k - 1}, or 'pred' for each sample's predicted class"
            )
    _say(args, f"computing {method} for {len(ds)} samples and writing pictures and a "
               f"report to {out}/ ...")
    with _reading(writes={out: "--out"}):
        clear_outputs(out, "explain")
    if tokens:
        written = write_text_explanation(model, ds, method=method, target=target,
                                         layer=args.layer, out=out)
    else:
        written = write_explanation(model, ds, method=method, target=target, out=out)
    for path in written:
        print(path)
    return OK


def _cmd_project(args: argparse.Namespace) -> int:
    out = Path(args.out)
    to_stdout = args.out == "-"
    if not to_stdout and out.suffix not in PROJECT_FORMATS:
        raise InputError(
            f"--out {args.out}: cannot tell the format from the suffix {out.suffix or '(none)'!r};"
            f" use one of {', '.join(PROJECT_FORMATS)}, or - for CSV on standard output"
        )
    if not to_stdout and out.is_dir():
        raise InputError(f"--out {out} is a folder; give a file name ending in .csv, .json or .npz")
    if not to_stdout:
        from netxray.cli_files import check_out, is_projection

        source = (args.model or "").partition(":")[0]
        inputs = {"the --data file": args.data, "the --weights file": args.weights,
                  "the --model file": source if source.endswith(".py") else None}
        check_out(out, inputs={k: Path(v) for k, v in inputs.items() if v is not None},
                  ours=is_projection, what="coordinates netxray project wrote",
                  overwrite=args.overwrite)
    from netxray import _io
    from netxray._checks import model_dtype
    from netxray.capture import activations, default_layers
    from netxray.projection import project

    model, ds, _ = _load_target(args)
    layer = args.layer if args.layer is not None else list(default_layers(model))[-1]
    acts = activations(model, ds.tensors(model_dtype(model)), layers=layer)
    if args.method != "pca":
        _say(args, f"fitting {args.method} on {len(ds)} samples (can take a minute) ...")
    result = project(acts.flat(layer), method=args.method, random_state=args.seed)
    if to_stdout or out.suffix == ".csv":
        path = result.to_csv(_io.STDOUT if to_stdout else out, labels=ds.y)
    elif out.suffix == ".json":
        path = _io.write_json(out, {"layer": layer, **result.to_dict(),
                                    "columns": result.column_names, "labels": ds.y.tolist()})
    else:
        path = result.to_npz(out, labels=ds.y)
    trust = "-" if result.trustworthiness is None else f"{result.trustworthiness:.3f}"
    summary = sys.stderr if to_stdout else sys.stdout
    print(f"{args.method} of {layer} ({acts.flat(layer).shape[1]} features, {len(ds)} samples); "
          f"trustworthiness {trust}", file=summary)
    if not to_stdout:
        print(path)
    return OK


def _cmd_presets(args: argparse.Namespace) -> int:
    from netxray import presets, resumes

    for name in presets.names():
        print(f"{name:14s} {presets.get(name).description}")
    for name in resumes.names():  # text presets: netxray demo --preset NAME
        print(f"{name:14s} (text; netxray demo --preset {name}) {resumes.get(name).description}")
    return OK


def _cmd_datasets(args: argparse.Namespace) -> int:
    from netxray import data

    for name in data.names():
        print(name)
    return OK


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{option} takes a class index or 'pred', got {text!r}") from None


_COMMANDS = {
    "demo": _cmd_demo,
    "diagnose": _cmd_diagnose,
    "explain": _cmd_explain,
    "project": _cmd_project,
    "presets": _cmd_presets,
    "datasets": _cmd_datasets,
    "train": cmd_train,
    "report": cmd_report,
    "export-tensorboard": cmd_export_tensorboard,
    "serve": cmd_serve,
}


if __name__ == "__main__":
    sys.exit(main())
