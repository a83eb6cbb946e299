"""The options several ``netxray`` commands share, and their argparse types.

Built from literals only (no torch), like the rest of the parser, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = [
    "add_debug", "add_model_options", "add_training_options", "hidden_widths",
    "non_negative_int", "positive", "seed",
]


def hidden_widths(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes widths like 16,16; got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden needs widths >= 1, got {text!r}")
    return sizes


def positive(kind: type[int] | type[float]) -> Any:
    """An argparse type: a number of ``kind`` that must be > 0."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0 or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {value}")
        return value

    return parse


#: seeds NumPy and scikit-learn take (``random_state``)
SEED_MAX = 2**32 - 1


def seed(text: str) -> int:
    """An argparse type: a random seed, an int in 0..2**32-1 (what scikit-learn takes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"a seed must be 0..2**32-1 ({SEED_MAX}), got {value}")
    return value


def add_training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="moons",
                   help="moons, circles, xor, gaussians, spiral, digits, iris, wine, "
                        "breast_cancer, or a .csv/.npz file (default: moons, the lecture's)")
    p.add_argument("--hidden", type=hidden_widths, default=(10,),
                   help="hidden widths, e.g. 16,16 (default: 10)")
    p.add_argument("--activation", default="relu",
                   help="relu, leaky_relu, gelu, elu, silu, tanh, sigmoid (default: relu)")
    p.add_argument("--epochs", type=positive(int), default=300, help="default: 300")
    p.add_argument("--lr", type=positive(float), default=0.2, help="default: 0.2")
    p.add_argument("--seed", type=seed, default=5, help="0..2**32-1; default: 5 (the lecture's)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="a counter-example from netxray.presets (see `netxray presets`)")
    src.add_argument("--model",
                     help="your model: package.module:factory or file.py:factory. netxray "
                          "imports that module and calls factory() to build the model: it "
                          "runs that code, so only name code you trust")
    p.add_argument("--weights", help="weights for --model: .safetensors or a torch.save'd state "
                                     "dict (without it the model has its factory's weights)")
    p.add_argument("--data", help="data for --model: .npz (arrays X, y; X keeps its shape, e.g. "
                                  "(n, 1, 28, 28) for a CNN), .csv (label column last), or "
                                  ".npz of token ids (input_ids, attention_mask, labels: passed "
                                  "to the model as keyword arguments)")
    p.add_argument("--label", default=None, help="the label column of a CSV (default: the last)")
    p.add_argument("--vocab", default=None,
                   help="token names for token-id data: a file with one token per line "
                        "(line i names id i, as BERT's vocab.txt)")


def add_debug(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the full traceback of an error")

def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value
