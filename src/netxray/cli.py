"""The ``netxray`` command: parses, calls the library, prints. No logic of its own.

Exit codes: 0 success (``diagnose``: healthy), 1 ``diagnose`` found error-severity problems,
2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes widths like 16,16; got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden needs widths >= 1, got {text!r}")
    return sizes


def _positive(kind: type[int] | type[float]) -> Any:
    """An argparse type: a number of ``kind`` that must be > 0."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
        return value

    return parse


def _add_training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="moons",
                   help="moons, circles, xor, gaussians, spiral, digits, iris, wine, "
                        "breast_cancer, or a .csv/.npz file (default: moons, the lecture's)")
    p.add_argument("--hidden", type=_hidden, default=(10,),
                   help="hidden widths, e.g. 16,16 (default: 10)")
    p.add_argument("--activation", default="relu",
                   help="relu, leaky_relu, gelu, elu, silu, tanh, sigmoid (default: relu)")
    p.add_argument("--epochs", type=_positive(int), default=300, help="default: 300")
    p.add_argument("--lr", type=_positive(float), default=0.2, help="default: 0.2")
    p.add_argument("--seed", type=int, default=5, help="default: 5 (the lecture's)")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="a counter-example from netxray.presets (see `netxray presets`)")
    src.add_argument("--model", help="your model: package.module:factory or file.py:factory")
    p.add_argument("--weights", help="weights for --model: .safetensors or a torch.save'd state dict")
    p.add_argument("--data", help="data for --model: .npz (arrays X, y) or .csv (label column last)")
    p.add_argument("--label", default=None, help="the label column of a CSV (default: the last)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netxray", description="See inside neural networks and find out why one trains badly."
    )
    parser.add_argument("--version", action="version", version=f"netxray {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="train the lecture's MLP, print its table, write a report")
    _add_training_options(demo)
    demo.add_argument("--preset", help="train a counter-example from netxray.presets instead")
    demo.add_argument("--out", default="netxray-out", help="output folder (default: netxray-out)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    diag = sub.add_parser("diagnose", help="find dead, saturated, exploding or vanishing units")
    _add_model_options(diag)
    diag.add_argument("--json", action="store_true", help="print the findings as JSON")
    diag.add_argument("--out", default=None, help="also write a report into this folder")

    # the attribution methods `explain` offers: those of netxray.attribution.METHODS that
    # need no option beyond the target
    CLI_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad",
                   "feature_ablation")

    explain = sub.add_parser("explain", help="attributions: which inputs drive the predictions")
    _add_model_options(explain)
    explain.add_argument("--method", default="saliency",
                         choices=CLI_METHODS, help="default: saliency (signed gradients)")
    explain.add_argument("--target", default="pred",
                         help="class index or 'pred' (the predicted class; default)")
    explain.add_argument("--out", default="netxray-explain", help="output folder")

    proj = sub.add_parser("project", help="project a layer's hidden states to 2-D (CSV out)")
    _add_model_options(proj)
    proj.add_argument("--layer", default=None,
                      help="dotted layer name (default: the last activation layer)")
    proj.add_argument("--method", default="pca", choices=["pca", "tsne", "umap"])
    proj.add_argument("--seed", type=int, default=0, help="random_state (default: 0)")
    proj.add_argument("--out", default="netxray-projection.csv",
                      help="CSV of coordinates with labels (or .npz)")

    sub.add_parser("presets", help="list the counter-example presets")
    sub.add_parser("datasets", help="list the built-in datasets")
    return parser


def _version() -> str:
    from netxray import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"netxray {args.command}: error: {e}", file=sys.stderr)
        return 2


def _cmd_demo(args: argparse.Namespace) -> int:
    from netxray import demo

    if args.preset is not None:
        run = demo.run_preset(args.preset)
    else:
        config = demo.DemoConfig(
            dataset=args.dataset, hidden=args.hidden, activation=args.activation,
            epochs=args.epochs, lr=args.lr, seed=args.seed,
        )
        run = demo.run(config, progress=not args.no_progress)
    print(demo.lecture_table(run))
    print()
    print(run.health.summary())
    report = demo.write_outputs(run, Path(args.out))
    print()
    print(f"Report: {report}")
    return 0


def _load_target(args: argparse.Namespace):  # -> (model, Dataset)
    from netxray import data, loading, presets

    if args.model is not None:
        if args.data is None:
            raise ValueError("--model needs --data FILE.npz|FILE.csv to run the model on")
        model = loading.load_model(args.model, args.weights)
        if args.data.endswith(".csv"):
            ds = data.load_csv(args.data, label=args.label if args.label is not None else -1)
        else:
            ds = data.load(args.data)
        return model, ds
    if args.weights is not None or args.data is not None:
        raise ValueError("--weights and --data go with --model")
    run = presets.get(args.preset or "healthy").run()
    return run.model, run.data


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from netxray._checks import model_dtype
    from netxray.health import diagnose, render_findings

    model, ds = _load_target(args)
    report = diagnose(model, ds.tensors(model_dtype(model)))
    if args.json:
        print(report.to_json(indent=1))
    elif sys.stdout.isatty():
        from rich.console import Console

        Console().print(render_findings(report))
    else:
        print(report.summary())
    if args.out:
        from netxray.analysis import write_health_report

        path = write_health_report(model, ds, report, Path(args.out))
        print(f"Report: {path}", file=sys.stderr if args.json else sys.stdout)
    return report.exit_code


def _cmd_explain(args: argparse.Namespace) -> int:
    from netxray.analysis import write_explanation

    model, ds = _load_target(args)
    target: int | str = args.target if args.target == "pred" else _int(args.target, "--target")
    written = write_explanation(model, ds, method=args.method, target=target, out=Path(args.out))
    for path in written:
        print(path)
    return 0


def _cmd_project(args: argparse.Namespace) -> int:
    from netxray._checks import model_dtype
    from netxray.capture import activations, default_layers
    from netxray.projection import project

    model, ds = _load_target(args)
    layer = args.layer if args.layer is not None else list(default_layers(model))[-1]
    acts = activations(model, ds.tensors(model_dtype(model)), layers=layer)
    result = project(acts.flat(layer), method=args.method, random_state=args.seed)
    out = Path(args.out)
    if out.suffix == ".npz":
        path = result.to_npz(out, labels=ds.y)
    else:
        path = result.to_csv(out, labels=ds.y)
    trust = "-" if result.trustworthiness is None else f"{result.trustworthiness:.3f}"
    print(f"{args.method} of {layer} ({acts.flat(layer).shape[1]} features, {len(ds)} samples); "
          f"trustworthiness {trust}")
    print(path)
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from netxray import presets

    for name in presets.names():
        print(f"{name:14s} {presets.get(name).description}")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from netxray import data

    for name in data.names():
        print(name)
    return 0


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{option} takes a class index or 'pred', got {text!r}") from None


_COMMANDS = {
    "demo": _cmd_demo,
    "diagnose": _cmd_diagnose,
    "explain": _cmd_explain,
    "project": _cmd_project,
    "presets": _cmd_presets,
    "datasets": _cmd_datasets,
}


if __name__ == "__main__":
    sys.exit(main())
