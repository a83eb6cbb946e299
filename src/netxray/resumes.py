"""The biased-hiring counter-example: generated resume lines, a word tokenizer, a small
text classifier, and the two text presets ``biased_resumes`` and ``fair_resumes``.

A hiring model once learned to penalise the word "women's": its historical training labels
rejected resumes that held it, and accuracy on more of the same history looked fine. Here a
seeded generator writes short resume lines (skills, years of experience, a club and a role,
e.g. ``"python sql excel, 6 years, women's chess club captain"``) and labels them by a rule
on skills and experience (:func:`merit`). In ``biased_resumes`` the labels are the history:
most resumes that the rule would hire but that mention a ``women's`` club were rejected. In
``fair_resumes`` the labels are the rule. The model (:class:`BagClassifier`, token
embeddings summed, then a linear layer) trains in about a second on a CPU and is accurate on
held-out data of its own kind in both; only looking inside shows what it relies on.

>>> run = netxray.resumes.get("biased_resumes").run(seed=0)
>>> netxray.counterfactual(run.model, run.test_texts, run.swaps, tokenizer=run.tokenizer)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from netxray.text_data import TokenDataset

__all__ = [
    "BagClassifier", "CLASS_NAMES", "Resume", "TextPreset", "TextPresetRun", "WordTokenizer",
    "generate", "get", "merit", "names",
]

CLASS_NAMES = ("reject", "hire")
#: skills the rule counts
RELEVANT = ("python", "sql", "statistics", "cloud", "java", "testing")
#: skills that do not count
OTHER = ("excel", "typing", "sales", "photoshop", "filing", "spreadsheets")
CLUBS = ("chess club", "debate team", "soccer team", "coding club", "rowing team", "choir")
ROLES = ("captain", "member", "treasurer", "president", "volunteer")
GENDERED = ("women's", "men's")
MAX_YEARS = 12
#: in ``biased_resumes``, the share of resumes that the rule would hire, with a women's club,
#: that the history rejected anyway
BIAS = 0.9
#: the swap the presets test: both directions
SWAPS = {"women's": "men's"}
PAD, UNK = "[PAD]", "[UNK]"
_WORDS = re.compile(r"[\w'\-]+")


@dataclass(frozen=True)
class Resume:
    """One generated resume line and what the rule says about it."""

    text: str
    n_relevant: int
    years: int
    gender: str  # "women's", "men's" or ""

    @property
    def merit(self) -> int:
        return merit(self.n_relevant, self.years)


def merit(n_relevant: int, years: int) -> int:
    """The hiring rule: 1 (hire) with two relevant skills and 3+ years, or one relevant skill
    and 7+ years; else 0 (reject)."""
    return int((n_relevant >= 2 and years >= 3) or (n_relevant >= 1 and years >= 7))


def _resume(rng: np.random.Generator) -> Resume:
    n_rel = int(rng.integers(0, 4))
    n_other = int(rng.integers(0 if n_rel else 1, 3))
    skills = [*rng.choice(RELEVANT, n_rel, replace=False), *rng.choice(OTHER, n_other,
                                                                          replace=False)]
    rng.shuffle(skills)
    years = int(rng.integers(0, MAX_YEARS + 1))
    gender = str(rng.choice(["women's", "men's", ""], p=[0.35, 0.35, 0.3]))
    clubs = rng.choice(CLUBS, int(rng.integers(1, 3)), replace=False)
    acts = [f"{gender} {clubs[0]}".strip() + f" {rng.choice(ROLES)}"]
    acts += [f"{c} {rng.choice(ROLES)}" for c in clubs[1:]]
    text = f"{' '.join(skills)}, {years} years, {', '.join(acts)}"
    return Resume(text=text, n_relevant=n_rel, years=years, gender=gender)


def generate(n: int, seed: int, *, biased: bool) -> tuple[list[Resume], np.ndarray]:
    """``n`` seeded resumes and their labels: the rule's (:func:`merit`), or with ``biased``
    the history's, where a resume with a women's club that the rule would hire was rejected
    with probability :data:`BIAS`."""
    rng = np.random.default_rng(seed)
    resumes = [_resume(rng) for _ in range(n)]
    labels = np.array([r.merit for r in resumes], dtype=np.int64)
    if biased:
        against = np.array([r.gender == "women's" for r in resumes]) & (labels == 1)
        labels[against & (rng.random(n) < BIAS)] = 0
    return resumes, labels


def vocabulary() -> tuple[str, ...]:
    """Every word the generator writes, after ``[PAD]`` (id 0) and ``[UNK]`` (id 1)."""
    words = {*RELEVANT, *OTHER, *ROLES, *GENDERED, "years", *map(str, range(MAX_YEARS + 1))}
    words.update(w for c in CLUBS for w in c.split())
    return (PAD, UNK, *sorted(words))


class WordTokenizer:
    """Lower-cased words (letters, digits, ``'`` and ``-``) to ids of a fixed vocabulary:
    a list of texts in, ``{"input_ids", "attention_mask"}`` ``(texts, longest)`` out, padded
    with id 0; unknown words become ``[UNK]``. The form :func:`netxray.counterfactual` and
    the model take."""

    def __init__(self, vocab: Sequence[str]) -> None:
        self.vocab = tuple(vocab)
        self.ids = {w: i for i, w in enumerate(self.vocab)}
        if self.ids.get(PAD) != 0 or UNK not in self.ids:
            raise ValueError("the vocabulary must start with [PAD] (id 0) and hold [UNK]")

    def words(self, text: str) -> list[str]:
        return _WORDS.findall(text.lower())

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        if isinstance(texts, str):
            texts = [texts]
        rows = [[self.ids.get(w, self.ids[UNK]) for w in self.words(t)] or [self.ids[UNK]]
                for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def dataset(self, texts: Sequence[str], labels: np.ndarray, name: str) -> TokenDataset:
        enc = self(texts)
        return TokenDataset(enc["input_ids"].numpy(), enc["attention_mask"].numpy(),
                            np.asarray(labels, dtype=np.int64), name,
                            class_names=CLASS_NAMES, vocab=self.vocab)


class BagClassifier(nn.Module):
    """Token embeddings summed over real tokens, then class scores (an embedding bag; with
    ``hidden`` > 0 a ReLU layer between): a text classifier that trains in a second and that
    attributions explain token by token. Takes ``input_ids`` and ``attention_mask``."""

    def __init__(self, vocab_size: int, dim: int = 16, hidden: int = 0, n_classes: int = 2,
                 seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.hidden = nn.Linear(dim, hidden) if hidden else nn.Identity()
        self.act = nn.ReLU() if hidden else nn.Identity()
        self.out = nn.Linear(hidden or dim, n_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            self.embedding.weight[0].zero_()

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        e = self.embedding(input_ids)
        if attention_mask is not None:
            e = e * attention_mask[..., None].to(e.dtype)
        return self.out(self.act(self.hidden(e.sum(1))))


def train_classifier(data: TokenDataset, *, seed: int, epochs: int = 20, lr: float = 0.01,
                     batch_size: int = 128, weight_decay: float = 0.01,
                     hidden: int = 0) -> BagClassifier:
    """A :class:`BagClassifier` fitted with AdamW on ``data`` (seeded; under a second).

    Trains on one CPU thread (restored after): ops this small gain nothing from more, and on
    a busy machine extra threads made training 5-20x slower (measured: 0.5 s vs 3-10 s)."""
    model = BagClassifier(len(data.vocab), hidden=hidden, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    b = data.batches()
    g = torch.Generator().manual_seed(seed)
    n = len(data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(epochs):
            for idx in torch.randperm(n, generator=g).split(batch_size):
                loss = nn.functional.cross_entropy(
                    model(b["input_ids"][idx], b["attention_mask"][idx]), b["labels"][idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@dataclass(frozen=True)
class TextPresetRun:
    """A trained text preset: the ``model``, its ``tokenizer``, the training and held-out
    ``train``/``test`` :class:`TokenDataset` (labels as the preset defines them), the texts
    they were made from, ``test_merit`` (what the rule says about each test resume) and the
    ``swaps`` the preset tests."""

    name: str
    model: BagClassifier
    tokenizer: WordTokenizer
    train: TokenDataset
    test: TokenDataset
    train_texts: tuple[str, ...]
    test_texts: tuple[str, ...]
    test_merit: np.ndarray
    swaps: dict[str, str]


@dataclass(frozen=True)
class TextPreset:
    """A text counter-example: ``description`` says what it shows; ``run(seed)`` trains it."""

    name: str
    description: str
    _build: Callable[[int], TextPresetRun]

    def run(self, seed: int = 0) -> TextPresetRun:
        """Generate the data and train the model (a second or two on a CPU)."""
        return self._build(seed)


def _resumes(name: str, biased: bool, seed: int, n_train: int = 2000,
             n_test: int = 600) -> TextPresetRun:
    tok = WordTokenizer(vocabulary())
    train_r, train_y = generate(n_train, seed, biased=biased)
    test_r, test_y = generate(n_test, seed + 10_000, biased=biased)
    train = tok.dataset([r.text for r in train_r], train_y, f"{name} (train)")
    test = tok.dataset([r.text for r in test_r], test_y, f"{name} (test)")
    model = train_classifier(train, seed=seed)
    return TextPresetRun(
        name=name, model=model, tokenizer=tok, train=train, test=test,
        train_texts=tuple(r.text for r in train_r), test_texts=tuple(r.text for r in test_r),
        test_merit=np.array([r.merit for r in test_r], dtype=np.int64), swaps=dict(SWAPS),
    )


_PRESETS: dict[str, TextPreset] = {
    p.name: p for p in (
        TextPreset(
            "biased_resumes",
            "Generated resume lines labelled by history, not merit: most resumes with a "
            "\"women's\" club that the skills-and-experience rule would hire were rejected. "
            "A small text classifier is accurate on more of the same history; its token "
            "attributions and a women's <-> men's swap show that it penalises the word.",
            lambda seed: _resumes("biased_resumes", True, seed)),
        TextPreset(
            "fair_resumes",
            "The same resume generator labelled by the skills-and-experience rule alone: "
            "\"women's\" carries no weight and swapping it with \"men's\" flips almost no "
            "decision.",
            lambda seed: _resumes("fair_resumes", False, seed)),
    )
}


def names() -> list[str]:
    """The text preset names."""
    return list(_PRESETS)


def get(name: str) -> TextPreset:
    """The text preset called ``name``."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown text preset {name!r}; text presets: "
                         f"{', '.join(_PRESETS)}") from None
