"""Attribution per token type over a dataset: :class:`TokenAttribution`.

A text model's attributions are per token occurrence (:meth:`Attribution.token_scores`). Over
a dataset the question is per token *type*: which token ids push each class up, how much,
how consistently, and how often they were seen (a token seen twice says little). This keeps
mergeable sufficient statistics per ``(token id, class)``: the count, the sum, the sum of
squares and the sum of absolute values of the token scores, in float64, for the token ids
actually seen (a sparse table: memory grows with the distinct ids, never with the data).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from netxray._results import Result

__all__ = ["TokenAttribution", "token_table"]


@dataclass(frozen=True, eq=False)
class TokenAttribution(Result):
    """Token scores summed up per token id and per class, over real tokens only.

    ``token_ids``: ``(k,)`` the distinct ids seen, ascending. ``counts``: ``(k, n_classes)``
    how many real tokens of that id were in samples of that class; ``sum``, ``sum_sq``,
    ``sum_abs``: ``(k, n_classes)`` float64 sums of the score, its square and its absolute
    value. A token's class is its sequence's (true label, or the predicted class when the
    data has no labels: ``grouped_by``). ``target`` says which output the scores explain.
    """

    token_ids: torch.Tensor
    counts: torch.Tensor
    sum: torch.Tensor
    sum_sq: torch.Tensor
    sum_abs: torch.Tensor
    method: str
    grouped_by: str
    target: str
    layer: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(self.counts.shape[1])

    def __len__(self) -> int:
        return int(self.token_ids.shape[0])

    def _reduce(self, cls: int | None) -> tuple[torch.Tensor, ...]:
        if cls is None:
            return tuple(t.sum(1) for t in (self.counts, self.sum, self.sum_sq, self.sum_abs))
        if not 0 <= cls < self.n_classes:
            raise ValueError(f"class {cls} is out of range; there are {self.n_classes} classes")
        return tuple(t[:, cls] for t in (self.counts, self.sum, self.sum_sq, self.sum_abs))

    def mean(self, cls: int | None = None) -> torch.Tensor:
        """``(k,)`` mean score per token id, in class ``cls`` (``None``: every class); NaN
        where the token was never seen there."""
        n, s, _, _ = self._reduce(cls)
        return s / n.double().where(n > 0, torch.tensor(float("nan"), dtype=torch.float64))

    def mean_abs(self, cls: int | None = None) -> torch.Tensor:
        """``(k,)`` mean |score| per token id; NaN where unseen."""
        n, _, _, a = self._reduce(cls)
        return a / n.double().where(n > 0, torch.tensor(float("nan"), dtype=torch.float64))

    def std(self, cls: int | None = None) -> torch.Tensor:
        """``(k,)`` sample standard deviation (``ddof=1``) of the score per token id; NaN
        where seen fewer than twice."""
        n, s, q, _ = self._reduce(cls)
        nd = n.double()
        var = (q - s * s / nd.clamp(min=1)) / (nd - 1).clamp(min=1)
        var = var.clamp(min=0.0)  # rounding can leave -1e-17 for identical scores
        return var.sqrt().where(n > 1, torch.tensor(float("nan"), dtype=torch.float64))

    def count(self, cls: int | None = None) -> torch.Tensor:
        """``(k,)`` occurrences per token id (in class ``cls``, or in all)."""
        return self._reduce(cls)[0]

    def top(self, cls: int | None = None, k: int = 10, *, min_count: int = 1,
            by: str = "mean") -> list[int]:
        """Up to ``k`` row indices into ``token_ids``, highest first by ``by`` (``"mean"``:
        the signed mean score, tokens that push the explained output up; ``"mean_abs"``;
        ``"count"``), among tokens seen at least ``min_count`` times in ``cls``."""
        if by not in ("mean", "mean_abs", "count"):
            raise ValueError(f"by must be 'mean', 'mean_abs' or 'count', got {by!r}")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        n = self.count(cls)
        key = {"mean": self.mean, "mean_abs": self.mean_abs}.get(by)
        score = n.double() if key is None else key(cls)
        keep = torch.nonzero(n >= min_count).flatten()
        order = torch.argsort(score[keep], descending=True, stable=True)
        return [int(i) for i in keep[order][:k]]

    def merge(self, other: TokenAttribution) -> TokenAttribution:
        """The statistics of both datasets together (exact: sums add)."""
        ids, inv = torch.unique(torch.cat([self.token_ids, other.token_ids]), return_inverse=True)
        c = max(self.n_classes, other.n_classes)
        out = []
        for a, b in ((self.counts, other.counts), (self.sum, other.sum),
                     (self.sum_sq, other.sum_sq), (self.sum_abs, other.sum_abs)):
            t = torch.zeros((len(ids), c), dtype=a.dtype)
            t[inv[: len(a)], : a.shape[1]] += a
            t[inv[len(a):], : b.shape[1]] += b
            out.append(t)
        return replace(self, token_ids=ids, counts=out[0], sum=out[1], sum_sq=out[2],
                       sum_abs=out[3])


def token_table(
    ids: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, n_classes: int, **meta: Any
) -> TokenAttribution:
    """One batch's :class:`TokenAttribution` from real tokens: ``ids``, ``scores`` and
    ``classes``, each ``(tokens,)`` (already masked: padding left out)."""
    ids = ids.detach().cpu().long()
    if ids.numel() and int(ids.min()) < 0:
        raise ValueError(f"token ids must be >= 0, got {int(ids.min())}")
    uniq, inv = torch.unique(ids, return_inverse=True)
    cls = classes.detach().cpu().long()
    s = scores.detach().cpu().double()
    where = (inv, cls)

    def acc(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return torch.zeros((len(uniq), n_classes), dtype=dtype).index_put_(
            where, values.to(dtype), accumulate=True
        )

    return TokenAttribution(
        token_ids=uniq, counts=acc(torch.ones_like(s), torch.long), sum=acc(s, torch.float64),
        sum_sq=acc(s * s, torch.float64), sum_abs=acc(s.abs(), torch.float64), **meta,
    )

