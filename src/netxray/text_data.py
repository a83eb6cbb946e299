"""Token ids for text models, as a tokenizer gives them: :class:`TokenDataset`, the
``.npz`` files that hold them (:func:`load_tokens`) and vocabulary files (:func:`read_vocab`).
``netxray.data`` names these too."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from netxray._results import Result
from netxray.data import _labels, _npz_arrays


@dataclass(frozen=True, eq=False)
class TokenDataset(Result):
    """Token ids for a text model, as a tokenizer gives them.

    ``input_ids`` ``(n, seq)`` integers >= 0; ``attention_mask`` ``(n, seq)`` 1 for real
    tokens, 0 for padding (``None``: every position is real); ``labels`` ``(n,)`` integer
    classes or ``None``; ``vocab``: the name of each token id (optional: ids are shown as
    numbers without it).
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray | None
    labels: np.ndarray | None
    name: str
    class_names: tuple[str, ...] = ()
    vocab: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ids = self.input_ids
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(
                f"input_ids must be integers shaped (samples, seq), got {ids.dtype} {ids.shape}"
            )
        if ids.size and ids.min() < 0:
            raise ValueError(f"input_ids must be >= 0, found {int(ids.min())}")
        m = self.attention_mask
        if m is not None:
            if m.shape != ids.shape:
                raise ValueError(
                    f"attention_mask must be shaped like input_ids {ids.shape}, got {m.shape}"
                )
            if not np.isin(m, (0, 1)).all():
                raise ValueError("attention_mask must hold 1 for real tokens and 0 for padding")
        if self.labels is not None and self.labels.shape != (ids.shape[0],):
            raise ValueError(f"labels must be ({ids.shape[0]},), one per sample, got "
                             f"{self.labels.shape}")
        if not self.class_names and self.labels is not None and len(self.labels):
            object.__setattr__(
                self, "class_names", tuple(str(c) for c in range(int(self.labels.max()) + 1))
            )

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def batches(self) -> dict[str, torch.Tensor]:
        """The whole dataset as one dict of int64 tensors, the form netxray's functions and
        the model (by keyword) take: ``input_ids``, ``attention_mask``, ``labels``."""
        out = {"input_ids": torch.as_tensor(self.input_ids, dtype=torch.long)}
        if self.attention_mask is not None:
            out["attention_mask"] = torch.as_tensor(self.attention_mask, dtype=torch.long)
        if self.labels is not None:
            out["labels"] = torch.as_tensor(self.labels, dtype=torch.long)
        return out


def is_token_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an ``.npz`` holding ``input_ids`` (a :class:`TokenDataset`)."""
    p = Path(path)
    if p.suffix != ".npz" or not p.is_file():
        return False
    try:
        with np.load(p, allow_pickle=False) as f:
            return "input_ids" in f.files
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, AttributeError):
        return False  # load_npz says what is wrong with it


def load_tokens(
    path: str | os.PathLike[str], vocab: str | os.PathLike[str] | Sequence[str] | None = None
) -> TokenDataset:
    """An ``.npz`` with ``input_ids`` ``(n, seq)``, optional ``attention_mask`` and
    ``labels``; ``vocab``: a file with one token per line (line i names id i) or a list."""
    p = Path(path)
    hint = ("Save it with np.savez(path, input_ids=ids, attention_mask=mask, labels=labels), "
            "e.g. from a tokenizer's return_tensors='np' output")
    arrays = _npz_arrays(p, ("input_ids",), hint)
    ids = arrays["input_ids"]
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{p}: input_ids must be integer token ids, got dtype {ids.dtype}. {hint}")
    mask = arrays.get("attention_mask")
    labels = arrays.get("labels")
    names = read_vocab(vocab) if isinstance(vocab, str | os.PathLike) else tuple(vocab or ())
    try:
        return TokenDataset(
            ids.astype(np.int64), None if mask is None else mask.astype(np.int64),
            None if labels is None else _labels(labels, p), p.stem, vocab=names,
        )
    except ValueError as e:
        raise ValueError(f"{p}: {e}. {hint}") from None


def read_vocab(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """One token per line, line ``i`` (from 0) naming token id ``i``, as BERT's vocab.txt."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such vocabulary file: {p}")
    names = tuple(p.read_text(encoding="utf-8").splitlines())
    if not names:
        raise ValueError(f"{p} is empty; a vocabulary file has one token per line")
    return names
