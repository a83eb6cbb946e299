"""Counterfactual swaps: does a text classifier change its mind when only one word changes?

:func:`counterfactual` takes texts and word pairs (``{"women's": "men's", "she": "he"}``),
swaps every pair in both directions in each text that holds one of the words, runs the model
on the original and on the swapped text, and counts how often the decision flips. Accuracy
cannot show this: a model that penalises a word is accurate on data where that word already
went with rejection. A :class:`CounterfactualResult` keeps the counts, the flip rate with a
Wilson 95% interval, the mean change in the predicted probability and the texts that flipped.

Matching is on whole words and ignores case: a word is a run of letters, digits, ``'`` and
``-``, so ``"he"`` matches ``He`` and ``he,`` but not ``she``, ``the`` or ``he's``. Every
pair is swapped in one pass (``she`` becomes ``he`` and ``he`` becomes ``she`` in the same
text, never back again), and the new word takes the case of the old one (``He`` -> ``She``,
``HE`` -> ``SHE``, otherwise as written in ``swaps``).

A text is compared only when the swap changes what the model is given: when the original and
the swapped text encode to the same ids (the tokenizer truncated the word away, or maps both
words to one unknown token), the model cannot answer to the swap, and counting such a text as
"did not flip" would lower the flip rate. Those texts are left out, counted in
``n_unchanged`` and warned about.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._results import Result
from netxray._warnings import NetxrayWarning

__all__ = ["CounterfactualResult", "counterfactual", "swap_terms", "wilson_interval"]

#: the letters of a word, for whole-word matching: a match may not touch one of these
_WORD = r"[\w'\-]"


@dataclass(frozen=True, eq=False)
class CounterfactualResult(Result):
    """What changed when only the swapped words changed.

    ``swaps``: every direction applied (``{"women's": "men's", "men's": "women's"}``).
    ``n_texts`` texts were given; ``n_with_term`` held a swap word and were run twice,
    ``n_without_term`` held none and were counted, not run. Of those with a word,
    ``n_unchanged`` encoded exactly as before the swap (the word was truncated away, or both
    words have one id: the model saw no change); they are left out of every number below
    (their positions in ``unchanged_index``). The other ``n_compared`` texts are compared:
    ``n_flipped`` of them got another predicted class after the swap, ``flip_rate`` =
    ``n_flipped / n_compared`` (NaN when none was compared), ``flip_low``/``flip_high`` its
    Wilson 95% interval. ``mean_prob_change``: the mean, over the compared texts, of
    p(swapped)[c] - p(original)[c] for c the original predicted class (negative: the swap
    weakened the decision). Per compared text, in the order given: ``index`` (its position
    in ``texts``), ``pred``/``pred_swapped`` ``(n_compared,)`` int64 classes,
    ``prob``/``prob_swapped`` ``(n_compared,)`` float64 probabilities of the original
    predicted class; ``originals``/``swapped`` the texts themselves. ``class_names``: one
    per class (may be empty).
    """

    swaps: dict[str, str]
    n_texts: int
    n_with_term: int
    n_without_term: int
    n_flipped: int
    flip_rate: float
    flip_low: float
    flip_high: float
    mean_prob_change: float
    index: np.ndarray
    pred: np.ndarray
    pred_swapped: np.ndarray
    prob: np.ndarray
    prob_swapped: np.ndarray
    originals: tuple[str, ...]
    swapped: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    n_unchanged: int = 0
    unchanged_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_compared(self) -> int:
        """Texts with a swap word whose encoding the swap changed: the flip rate's count."""
        return self.n_with_term - self.n_unchanged

    @property
    def flipped(self) -> np.ndarray:
        """``(n_compared,)`` bool: whether each compared text's decision changed."""
        return self.pred != self.pred_swapped

    def flipped_examples(self, k: int | None = None) -> list[dict[str, Any]]:
        """Up to ``k`` flipped texts, the largest drop in the original decision's probability
        first: ``{"index", "original", "swapped", "pred", "pred_swapped", "prob",
        "prob_swapped"}`` each (``index``: the text's position in ``texts``)."""
        idx = np.flatnonzero(self.flipped)
        order = idx[np.argsort(-(self.prob - self.prob_swapped)[idx], kind="stable")]
        return [{"index": int(self.index[i]), "original": self.originals[i],
                 "swapped": self.swapped[i], "pred": int(self.pred[i]),
                 "pred_swapped": int(self.pred_swapped[i]), "prob": float(self.prob[i]),
                 "prob_swapped": float(self.prob_swapped[i])} for i in order[:k]]

    def summary(self) -> str:
        """One line: the flip rate with its interval and the counts behind it."""
        if self.n_with_term == 0:
            return (f"no text of {self.n_texts} holds a swap word "
                    f"({', '.join(sorted(self.swaps))}); nothing to compare")
        left = (f"; {self.n_unchanged} text(s) with a swap word were left out: the swap did "
                "not change their encoding (truncated away?)" if self.n_unchanged else "")
        if self.n_compared == 0:
            return (f"no swap changed what the model sees: all {self.n_with_term} texts with a "
                    f"swap word encode as before; nothing to compare{left}")
        return (f"flip rate {self.flip_rate:.1%} (95% CI {self.flip_low:.1%}-{self.flip_high:.1%})"
                f": {self.n_flipped} of {self.n_compared} texts with a swap word changed class; "
                f"mean change in the predicted probability {self.mean_prob_change:+.3f}; "
                f"{self.n_without_term} of {self.n_texts} texts held no swap word{left}")


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``k / n`` (95% for the default ``z``);
    ``(nan, nan)`` for ``n == 0``. Unlike the normal approximation it stays inside [0, 1] and
    is not empty at ``k = 0``."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _both_ways(swaps: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(swaps, Mapping) or not swaps:
        raise ValueError("swaps must be a non-empty dict of word -> replacement, e.g. "
                         "{\"women's\": \"men's\", \"she\": \"he\"}")
    out: dict[str, str] = {}
    for a, b in swaps.items():
        if not isinstance(a, str) or not isinstance(b, str) or not a.strip() or not b.strip():
            raise ValueError(f"swaps must map non-empty words to words, got {a!r}: {b!r}")
        for x, y in ((a, b), (b, a)):
            key = x.lower()
            if key in out and out[key].lower() != y.lower():
                raise ValueError(
                    f"{x!r} is swapped with both {out[key]!r} and {y!r}; give each word one "
                    "partner (the swap goes both ways)"
                )
            out[key] = y
    return out


def _pattern(table: Mapping[str, str]) -> re.Pattern[str]:
    words = sorted(table, key=len, reverse=True)  # longest first: "women's" before "women"
    alt = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!{_WORD})(?:{alt})(?!{_WORD})", re.IGNORECASE)


def _cased(old: str, new: str) -> str:
    if old.isupper() and len(old) > 1:
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def swap_terms(text: str, swaps: Mapping[str, str]) -> tuple[str, int]:
    """``text`` with every swap word replaced by its partner (both directions, whole words,
    any case), and how many words were replaced."""
    table = _both_ways(swaps)
    return _swap(text, table, _pattern(table))


def _swap(text: str, table: Mapping[str, str], pat: re.Pattern[str]) -> tuple[str, int]:
    return pat.subn(lambda m: _cased(m.group(0), table[m.group(0).lower()]), text)


def _encode(tokenizer: Any, texts: list[str]) -> Any:
    """A HuggingFace tokenizer gets padding and tensors asked for; a plain callable is called
    with the list and must return what the model takes (a tensor, or a dict of tensors)."""
    if hasattr(tokenizer, "convert_ids_to_tokens") and hasattr(tokenizer, "pad"):
        return tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    return tokenizer(texts)


def _scores(model: nn.Module, enc: Any, n: int, output: Any) -> tuple[torch.Tensor, str | None]:
    """The model's output rows for an encoding ``(n, classes)``, as the model gives them,
    and what they hold when a probability-making module made them (``None``: decided from
    the values of all runs together, :func:`_probabilities`)."""
    from netxray._probabilities import LOGITS, watch_head
    from netxray.batches import BatchFormat, check_output_rows, pick_output, read_batches

    if isinstance(enc, Mapping):
        enc = {k: v for k, v in enc.items() if k != "labels"}
    scores, kinds = [], set()
    for b in read_batches(enc, n, BatchFormat(labels=None)):
        b = b.to(model)
        with watch_head(model) as head:
            out = pick_output(b.run(model), output)
        check_output_rows(b, out)
        if out.ndim != 2 or out.shape[1] < 2:
            raise ValueError(
                f"the model outputs shape {tuple(out.shape)}; counterfactual needs "
                "(texts, classes) scores with at least 2 classes (pick them with output=)"
            )
        if head.outputs:  # (a module's output, or logits next to one: by memory, exactly)
            kinds.add(head.kind(out))
        scores.append(out.detach().double().cpu())
    module_kinds = kinds - {LOGITS} if kinds else set()
    return torch.cat(scores), (module_kinds.pop() if len(module_kinds) == 1 else None)


def _rows(enc: Any, n: int) -> dict[str, torch.Tensor] | None:
    """The tensors of an encoding that hold one row per text, by key; None when it is not a
    tensor, a dict or a tuple of tensors."""
    if isinstance(enc, torch.Tensor):
        enc = {"": enc}
    elif isinstance(enc, tuple | list):
        enc = {str(i): t for i, t in enumerate(enc)}
    if not isinstance(enc, Mapping):
        return None
    return {str(k): v for k, v in enc.items()
            if k != "labels" and isinstance(v, torch.Tensor) and v.ndim >= 1 and v.shape[0] == n}


def _same_encoding(enc0: Any, enc1: Any, n: int) -> np.ndarray:
    """``(n,)`` bool: whether each swapped text encodes exactly as its original, padding left
    out where an ``attention_mask`` marks it. Different keys, shapes or values, or an
    encoding of another kind, count as a change."""
    r0, r1 = _rows(enc0, n), _rows(enc1, n)
    same = np.zeros(n, dtype=bool)
    if not r0 or r1 is None or r0.keys() != r1.keys():
        return same
    m0, m1 = r0.get("attention_mask"), r1.get("attention_mask")
    for i in range(n):
        same[i] = all(_real(r0[k], m0, i).shape == _real(r1[k], m1, i).shape
                      and torch.equal(_real(r0[k], m0, i), _real(r1[k], m1, i)) for k in r0)
    return same


def _real(t: torch.Tensor, mask: torch.Tensor | None, i: int) -> torch.Tensor:
    """Row ``i`` of ``t`` at its real (unmasked) positions."""
    if mask is None or mask.ndim != 2 or t.ndim < 2 or t.shape[1] != mask.shape[1]:
        return t[i]
    return t[i][mask[i].bool()]


def _unmasked_width(enc: Any) -> int | None:
    """The padded length of a chunk's encoding when nothing tells the model which positions
    are padding (no ``attention_mask``); None when there is a mask or no ``(texts, length)``
    tensor of ids."""
    if isinstance(enc, Mapping):
        if "attention_mask" in enc:
            return None
        enc = enc.get("input_ids", next(iter(enc.values()), None))
    return int(enc.shape[1]) if isinstance(enc, torch.Tensor) and enc.ndim >= 2 else None


def _compare(model: nn.Module, tokenizer: Any, originals: list[str], swapped: list[str],
             output: Any, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The scores of the originals and of the swapped texts, the same chunks of each, and
    whether each swapped text encodes exactly as its original.

    A chunk is padded to its longest text. When a swap changes that length and the encoding
    has no attention mask, every text of the chunk is compared at two paddings: a model that
    reads its padding may flip because of it. That is warned about, never passed over."""
    p0, p1, same, widths, kinds = [], [], [], [], []
    for start in range(0, len(originals), batch_size):
        chunk0 = originals[start: start + batch_size]
        enc0 = _encode(tokenizer, chunk0)
        enc1 = _encode(tokenizer, swapped[start: start + batch_size])
        w0, w1 = _unmasked_width(enc0), _unmasked_width(enc1)
        if len(chunk0) > 1 and w0 is not None and w1 is not None and w0 != w1:  # (one text: no padding)
            widths.append((w0, w1))
        same.append(_same_encoding(enc0, enc1, len(chunk0)))
        for p, enc in ((p0, enc0), (p1, enc1)):
            scores, kind = _scores(model, enc, len(chunk0), output)
            p.append(scores)
            kinds.append(kind)
    if widths:
        (w0, w1), n = widths[0], len(widths)
        warnings.warn(
            f"counterfactual: in {n} batch{'es' if n > 1 else ''} the swapped texts were padded "
            f"to another length than the originals (e.g. {w1} against {w0} positions) and the "
            "tokenizer gives no attention_mask: a model that reads its padding may flip "
            "because of the padding, not the swapped word. Have the tokenizer return "
            "{'input_ids': ..., 'attention_mask': ...} (and the model use the mask), or pass "
            "batch_size=1 (one text per batch: no padding).", NetxrayWarning, stacklevel=3)
    made = {k for k in kinds if k is not None}
    return torch.cat(p0), torch.cat(p1), np.concatenate(same), (made.pop() if len(made) == 1
                                                                else None)


def _probabilities(s0: torch.Tensor, s1: torch.Tensor, kind: str | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The class probabilities of both runs, by :mod:`netxray._probabilities`' rule: ``kind``
    when a Sigmoid/Softmax/LogSoftmax module made the outputs, else decided from the values
    of both runs together (rows in [0, 1] summing to 1: probabilities; else logits), so one
    batch never reads otherwise than the next."""
    from netxray._probabilities import Head, to_probabilities

    if kind is None:
        kind = Head().kind(torch.cat([s0, s1]))
    return to_probabilities(s0, kind), to_probabilities(s1, kind)


def _warn_unchanged(texts: Sequence[str], left_out: list[int], m: int) -> None:
    k = len(left_out)
    words = len(texts[left_out[0]].split())
    warnings.warn(
        f"counterfactual: {k} of {m} texts with a swap word encode exactly as before the swap "
        f"(e.g. text {left_out[0]}, {words} words): the tokenizer cut the word away "
        "(truncation to its maximum length) or gives both words one id, so the model never "
        "sees the change. They are left out of the flip rate and the mean change "
        "(n_unchanged, unchanged_index), not counted as decisions that held; to test them, "
        "shorten the texts so the word falls within the tokenizer's maximum length, or add the "
        "words to its vocabulary.", NetxrayWarning, stacklevel=3)


def counterfactual(
    model: nn.Module,
    texts: Sequence[str],
    swaps: Mapping[str, str],
    *,
    tokenizer: Callable[[list[str]], Any],
    output: Any = None,
    batch_size: int = 256,
    class_names: Sequence[str] = (),
) -> CounterfactualResult:
    """Swap words in ``texts`` and count how often ``model``'s decision flips.

    ``swaps``: word -> partner, applied both ways (see the module docstring for matching and
    case). ``tokenizer``: a HuggingFace tokenizer (called with ``padding=True,
    truncation=True, return_tensors="pt"``) or any callable from a list of strings to what the
    model takes: a tensor of ids, or a dict passed by keyword (``input_ids``,
    ``attention_mask``). ``output``: where the class scores are in the model's output (as in
    :func:`netxray.activations`; default: a tensor itself or its ``logits``); logits get a
    softmax, probabilities are used as they are (:mod:`netxray._probabilities`' rule, as for
    decision surfaces). Texts
    without a swap word are counted in ``n_without_term``, not silently dropped. A text
    whose encoding the swap leaves unchanged (the word truncated away, or both words one
    id) is left out of the numbers, counted in ``n_unchanged``, and a ``NetxrayWarning``
    says so. The model runs under ``torch.no_grad`` in the mode it is in; call
    ``model.eval()`` first (a model with dropout in training mode is refused). Memory is bounded by ``batch_size`` texts at a time.
    Originals and swapped texts run in the same batches; when a swap changes a batch's padded
    length and the encoding carries no ``attention_mask``, a ``NetxrayWarning`` says so (a
    model that reads padding could flip because of it).
    """
    from netxray._checks import check_eval_mode, preserved_state

    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of strings (not one string)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_eval_mode(model)
    table = _both_ways(swaps)
    pat = _pattern(table)
    index, originals, swapped = [], [], []
    for i, text in enumerate(texts):
        new, n = _swap(text, table, pat)
        if n:
            index.append(i)
            originals.append(text)
            swapped.append(new)
    m = len(index)
    pred = np.zeros(0, dtype=np.int64)
    pred_s, prob, prob_s = pred.copy(), np.zeros(0), np.zeros(0)
    left_out: list[int] = []
    if m:
        with preserved_state(model), torch.no_grad():
            s0, s1, same, kind = _compare(model, tokenizer, originals, swapped, output,
                                          batch_size)
        if s0.shape != s1.shape:
            raise ValueError(f"the model gave {tuple(s0.shape)} scores for the originals but "
                             f"{tuple(s1.shape)} for the swapped texts")
        p0, p1 = _probabilities(s0, s1, kind)
        if same.any():
            left_out = [index[i] for i in np.flatnonzero(same)]
            _warn_unchanged(texts, left_out, m)
            keep = np.flatnonzero(~same)
            index = [index[i] for i in keep]
            originals, swapped = [originals[i] for i in keep], [swapped[i] for i in keep]
            p0, p1 = p0[torch.as_tensor(keep)], p1[torch.as_tensor(keep)]
        c = p0.argmax(1)
        pred, pred_s = c.numpy().astype(np.int64), p1.argmax(1).numpy().astype(np.int64)
        prob = p0.gather(1, c[:, None])[:, 0].numpy()
        prob_s = p1.gather(1, c[:, None])[:, 0].numpy()
    k, compared = int((pred != pred_s).sum()), len(index)
    low, high = wilson_interval(k, compared)
    return CounterfactualResult(
        swaps=dict(table), n_texts=len(texts), n_with_term=m, n_without_term=len(texts) - m,
        n_flipped=k, flip_rate=k / compared if compared else float("nan"), flip_low=low,
        flip_high=high,
        mean_prob_change=float((prob_s - prob).mean()) if compared else float("nan"),
        index=np.asarray(index, dtype=np.int64), pred=pred, pred_swapped=pred_s,
        prob=prob.astype(np.float64), prob_swapped=prob_s.astype(np.float64),
        originals=tuple(originals), swapped=tuple(swapped), class_names=tuple(class_names),
        n_unchanged=len(left_out), unchanged_index=np.asarray(left_out, dtype=np.int64),
    )
