"""The application layer between a trained model and the report: run the model, keep results.

:func:`analyze` runs a model over its data and returns an :class:`Analysis`, a bundle of
result objects that saves, loads and compares like any other result. The report
(:mod:`netxray.report`) draws only from such results and never sees a model, so a page can
be drawn again later from a saved bundle::

    from netxray.analysis import Analysis, analyze
    from netxray.report import write_analysis

    a = analyze(model, train, test, history)
    a.save("results.npz")
    write_analysis(Analysis.load("results.npz"), "report.html")

``write_health_report`` and ``write_explanation`` do the same for ``netxray diagnose --out``
and ``netxray explain``: they run what needs the model here, then hand results to
:mod:`netxray.report.writers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from netxray._checks import model_dtype
from netxray._probabilities import predicted_classes
from netxray._results import Result
from netxray.batches import pick_output
from netxray.data import Dataset, TokenDataset

if TYPE_CHECKING:
    from netxray.attribution import Attribution, DatasetAttribution
    from netxray.batches import Batch
    from netxray.boundary import BoundaryEvolution, BoundaryGrid, GridWarp, UnitMaps
    from netxray.health import HealthReport
    from netxray.probes import ActivationMap, CKAMatrix, ProbeResult
    from netxray.projection import Projection
    from netxray.swaps import CounterfactualResult
    from netxray.training import TrainingHistory

__all__ = [
    "Analysis", "TextAnalysis", "analyze", "analyze_text", "explain_dataset", "write_explanation",
    "write_health_report", "write_text_explanation",
]

#: The report adds a t-SNE of the last hidden layer up to this many training samples.
TSNE_MAX_POINTS = 5000
#: The report shows the input pattern of at most this many first-layer units.
MAX_PATTERNS = 64


@dataclass(frozen=True, eq=False)
class Analysis(Result):
    """Every result a report shows, computed once (:func:`analyze`) and drawn by the HTML
    report and the PNGs; ``save``/``load`` keep it for drawing later."""

    title: str
    train: Dataset
    test: Dataset
    history: TrainingHistory | None
    boundary: BoundaryGrid
    evolution: BoundaryEvolution | None
    unit_maps: UnitMaps
    layers: tuple[str, ...]  # hidden layers shown, in forward order
    hidden: dict[str, np.ndarray]  # layer -> (n_train, features) activations
    activation_maps: dict[str, ActivationMap]  # layer -> map over the training set
    projections: dict[str, Projection]  # layer (or "layer (t-SNE)") -> training-set projection
    train_pred: np.ndarray  # (n_train,) predicted class
    probes: ProbeResult | None
    cka: CKAMatrix | None
    saliency: Attribution  # the test points, signed, predicted class
    dataset_saliency: DatasetAttribution  # over the test set, by true class
    health: HealthReport
    unit_patterns: np.ndarray | None = None  # (units, features): mean d unit / d input, layer 1
    grid_warp: GridWarp | None = None  # when a hidden layer has exactly 2 units
    subtitle: str = ""  # one line under the report's title
    meta: dict[str, str | int | float | bool | None] = field(default_factory=dict)  # header chips


#: the stages of :func:`analyze`, in order, as its progress bar names them
_STAGES = ("activations", "decision boundary", "unit maps", "boundary over training",
           "projections", "probes and CKA", "saliency", "health", "unit patterns", "grid warp")


def analyze(
    model: nn.Module,
    train: Dataset,
    test: Dataset,
    history: TrainingHistory | None = None,
    *,
    health: HealthReport | None = None,
    title: str = "netxray report",
    subtitle: str = "",
    meta: dict[str, str | int | float | bool | None] | None = None,
    progress: bool | None = None,
) -> Analysis:
    """Compute what the report shows. ``model`` must be in eval mode; it is not changed.

    ``progress``: one bar over the report's stages (``None``: only when it runs long in a
    terminal or notebook; see :mod:`netxray._progress`)."""
    from netxray._progress import bar
    from netxray.attribution import NeuronGradient, Saliency, attribute_dataset
    from netxray.boundary import boundary_evolution, decision_boundary, grid_warp, unit_maps
    from netxray.capture import activations, default_layers
    from netxray.health import diagnose
    from netxray.probes import activation_map, cka_matrix, linear_probes
    from netxray.projection import project

    with bar(desc="report", total=len(_STAGES), unit="stage", progress=progress) as b:

        def stage(name: str) -> None:  # one tick per stage finished, the next one's name shown
            if name != _STAGES[0]:
                b.update()
            b.note(name)

        dtype = model_dtype(model)
        Xtr, ytr = train.tensors(dtype)
        Xte, _ = test.tensors(dtype)
        stage("activations")
        acts = activations(model, (Xtr, ytr), layers=list(default_layers(model)), progress=False)
        layers = tuple(acts.layers)  # a module called twice is two layers: relu, relu#1
        hidden = {name: acts.flat(name) for name in layers}
        two_d = train.X.shape[1] == 2
        stage("decision boundary")
        boundary = decision_boundary(model, Xtr, resolution=160 if two_d else 100)
        stage("unit maps")
        maps = unit_maps(model, Xtr, resolution=48)
        stage("boundary over training")
        evolution = None
        if history is not None and len(history.checkpoints) > 1:
            # frames hold resolution^2 x classes numbers each: keep many-class reports small
            res = 80 if train.n_classes <= 3 else 48
            evolution = boundary_evolution(
                model, history.checkpoints, Xtr, ytr, resolution=res, hidden_layer=layers[-1]
            )
        stage("projections")
        projections = {
            name: project(H, "pca", n_components=2) for name, H in hidden.items() if H.shape[1] >= 2
        }
        last = hidden[layers[-1]]
        if not two_d and last.shape[1] > 2 and len(last) <= TSNE_MAX_POINTS:
            projections[f"{layers[-1]} (t-SNE)"] = project(last, "tsne", random_state=0,
                                                         progress=progress)
        stage("probes and CKA")
        probes = None
        counts = np.bincount(train.y)
        if counts.min() >= 5:
            probes = linear_probes({"input": train.X, **hidden}, train.y, cv=5)
        cka = cka_matrix({"input": train.X, **hidden}) if len(hidden) >= 1 else None
        stage("saliency")
        saliency = Saliency(model).attribute(Xte, target="pred", abs=False)
        dataset_saliency = attribute_dataset(
            Saliency(model), test.tensors(dtype), target="label", n_classes=train.n_classes,
            progress=False,
        )
        stage("health")
        if health is None:  # update ratios against the checkpoint before these weights
            before = None if history is None else history.weights_before(model)
            health = diagnose(model, (Xtr, ytr), previous_weights=before, progress=False)
        stage("unit patterns")
        patterns = None
        if train.image_shape is not None:  # what each first-layer unit looks for in an image
            ng = NeuronGradient(model, layers[0])
            n_units = hidden[layers[0]].shape[1]
            patterns = np.stack([
                ng.attribute(Xte, unit=k).values.mean(0).detach().cpu().numpy().reshape(-1)
                for k in range(min(n_units, MAX_PATTERNS))
            ])
        stage("grid warp")
        warp = None
        if any(h.shape[1] == 2 for h in hidden.values()):
            warp = grid_warp(model, Xtr, layers=[n for n, h in hidden.items() if h.shape[1] == 2])
        b.update()
    return Analysis(
        title=title,
        train=train,
        test=test,
        history=history,
        boundary=boundary,
        evolution=evolution,
        unit_maps=maps,
        layers=layers,
        hidden=hidden,
        activation_maps={n: activation_map(H, train.y) for n, H in hidden.items()},
        projections=projections,
        train_pred=predicted_classes(model, Xtr).cpu().numpy(),
        probes=probes,
        cka=cka,
        saliency=saliency,
        dataset_saliency=dataset_saliency,
        health=health,
        unit_patterns=patterns,
        grid_warp=warp,
        subtitle=subtitle,
        meta=dict(meta or {}),
    )


# ------------------------------------------------------------- netxray diagnose / explain


def write_health_report(model: nn.Module, dataset: Dataset, health: HealthReport,
                        out: Path) -> Path:
    """``out/report.html`` with the Health section, and ``out/health.png``."""
    from netxray.report.writers import write_health_files

    return write_health_files(health, dataset, out,
                              subtitle=f"{type(model).__name__} on {len(dataset)} samples")


def explain_dataset(
    model: nn.Module, dataset: Dataset, *, method: str = "saliency", target: int | str = "pred"
) -> Attribution:
    """Attributions of every sample of ``dataset``: an ``Attribution`` (signed values).

    ``method`` is any name :func:`netxray.explain` accepts; an unknown one raises there.
    """
    from netxray.attribution import explain

    X, _ = dataset.tensors(model_dtype(model))
    kwargs: dict[str, Any] = {"abs": False} if method == "saliency" else {}
    return explain(model, X, method=method, target=target, **kwargs)


def write_explanation(
    model: nn.Module, dataset: Dataset, *, method: str, target: int | str, out: Path
) -> list[Path]:
    """Attributions as NPZ (every value) and CSV (per-feature summary), PNGs and a report."""
    from netxray.report.writers import write_attribution_files

    attr = explain_dataset(model, dataset, method=method, target=target)
    return write_attribution_files(attr, dataset, target=target, out=out)


# ------------------------------------------------------------------------- text models

#: token attribution methods for text models, by the names the CLI uses (layer methods on
#: the embedding: integer token ids take no gradient)
TEXT_METHODS = ("integrated_gradients", "input_x_gradient", "saliency")


@dataclass(frozen=True, eq=False)
class TextAnalysis(Result):
    """What the report's Text section shows for a model on token ids: a few example
    sentences with a score per token, and per-token-id statistics over the whole dataset.

    ``attribution``: the dataset's :class:`DatasetAttribution`, its ``tokens`` the
    per-token-id statistics; ``token_names``: the name of each of ``attribution.tokens``'
    ``token_ids``. ``examples``: the real tokens of each example, by name;
    ``example_scores`` ``(n_examples, max_len)``: each token's score (NaN past its
    length); ``example_labels`` (-1 without labels), ``example_preds``,
    ``example_targets`` (the class each example's scores explain), ``example_delta``
    (completeness error; NaN for methods without one), all ``(n_examples,)``.
    ``accuracy``: of the predictions, when the data has labels; ``counterfactual``: the
    word swaps tested (:func:`netxray.counterfactual`), shown in the report's section.
    """

    title: str
    class_names: tuple[str, ...]
    attribution: DatasetAttribution
    token_names: tuple[str, ...]
    examples: tuple[tuple[str, ...], ...]
    example_scores: np.ndarray
    example_labels: np.ndarray
    example_preds: np.ndarray
    example_targets: np.ndarray
    example_delta: np.ndarray
    subtitle: str = ""
    meta: dict[str, str | int | float | bool | None] = field(default_factory=dict)
    accuracy: float | None = None  # of the predictions over the labelled data, if labelled
    counterfactual: CounterfactualResult | None = None  # word swaps, when some were tested


def token_namer(vocab: Any) -> Any:
    """A function from token ids to names: ``vocab`` a tokenizer (its
    ``convert_ids_to_tokens``), a list of names (id i -> ``vocab[i]``) or ``None`` (ids)."""
    if vocab is None:
        return lambda ids: [str(int(i)) for i in ids]
    convert = getattr(vocab, "convert_ids_to_tokens", None)
    if callable(convert):
        return lambda ids: [str(t) for t in convert([int(i) for i in ids])]
    if isinstance(vocab, str) or not hasattr(vocab, "__getitem__"):
        raise TypeError(
            f"vocab must be a tokenizer, a list of token names or None, got {type(vocab).__name__}"
        )
    names = list(vocab)
    return lambda ids: [names[int(i)] if int(i) < len(names) else f"[{int(i)}]" for i in ids]


def embedding_layer(model: nn.Module) -> str:
    """The model's token embedding: its ``nn.Embedding`` (word embeddings first)."""
    from netxray.attribution._call import _embeddings

    names = _embeddings(model)
    if not names:
        raise ValueError(
            "the model has no nn.Embedding to attribute token ids to; pass layer= (the "
            "dotted name of the layer whose output is one vector per token)"
        )
    return names[0]


def _text_method(model: nn.Module, layer: str, method: str) -> Any:
    from netxray.attribution import (
        LayerGradient,
        LayerGradientXActivation,
        LayerIntegratedGradients,
    )

    classes = dict(zip(TEXT_METHODS, (LayerIntegratedGradients, LayerGradientXActivation,
                                      LayerGradient), strict=True))
    if method not in classes:
        raise ValueError(
            f"method {method!r} cannot attribute token ids; choose one of "
            f"{', '.join(TEXT_METHODS)} (attributions to the embedding layer's output)"
        )
    return classes[method](model, layer=layer)


class _Examples:
    """Keeps the first ``n`` samples' real tokens and scores as the batches go by."""

    def __init__(self, model: nn.Module, n: int, name: Any, output: Any) -> None:
        self.model, self.n, self.name, self.output = model, n, name, output
        self.tokens: list[tuple[str, ...]] = []
        self.scores: list[np.ndarray] = []
        self.labels: list[int] = []
        self.preds: list[int] = []
        self.targets: list[int] = []
        self.delta: list[float] = []
        self.correct = self.labelled = 0  # for the accuracy over the whole dataset

    def __call__(self, attr: Attribution, batch: Batch) -> None:
        with torch.no_grad():
            preds = pick_output(batch.run(self.model), self.output).argmax(1).cpu()
        if batch.labels is not None:  # (batch,) class ids: attribute_dataset checks them
            self.correct += int((preds == batch.labels.cpu()).sum())
            self.labelled += batch.size
        take = min(self.n - len(self.tokens), batch.size)
        if take <= 0:
            return

        ids = attr.inputs if isinstance(attr.inputs, torch.Tensor) else attr.inputs[0]
        v = attr.values.detach()
        if ids.ndim != 2 or v.ndim < 3:
            raise ValueError(
                f"the attributions have shape {tuple(v.shape)} for inputs {tuple(ids.shape)}: "
                "not one vector per token; pass layer= a layer with one output per token "
                "(the embedding)"
            )
        scores = v.reshape(v.shape[0], v.shape[1], -1).sum(-1).double().cpu()
        real = (torch.ones(ids.shape, dtype=torch.bool) if batch.mask is None
                else batch.mask.bool()).cpu()
        for i in range(take):
            keep = real[i]
            self.tokens.append(tuple(self.name(ids[i].cpu()[keep])))
            self.scores.append(scores[i][keep].numpy())
            self.labels.append(-1 if batch.labels is None else int(batch.labels[i]))
            self.preds.append(int(preds[i]))
            self.targets.append(-1 if attr.target is None else int(attr.target[i]))
            self.delta.append(float("nan") if attr.delta is None else float(attr.delta[i]))

    def padded(self) -> np.ndarray:
        width = max((len(s) for s in self.scores), default=0)
        out = np.full((len(self.scores), width), np.nan)
        for i, s in enumerate(self.scores):
            out[i, : len(s)] = s
        return out


def analyze_text(
    model: nn.Module,
    data: Any,
    *,
    vocab: Any = None,
    layer: str | None = None,
    method: str = "integrated_gradients",
    target: int | str = "pred",
    class_names: tuple[str, ...] | None = None,
    n_examples: int = 8,
    n_steps: int = 32,
    batch_size: int = 32,
    labels: Any = "labels",
    mask: Any = "attention_mask",
    output: Any = None,
    input_key: str | None = None,
    title: str = "netxray text report",
    subtitle: str = "",
    on_batch: Any = None,
    counterfactual: CounterfactualResult | None = None,
    **kwargs: Any,
) -> TextAnalysis:
    """Token attributions of a text model over a dataset, for the report's Text section.

    ``data``: a :class:`netxray.data.TokenDataset`, a dict of arrays (a tokenizer's output
    with ``labels``), a DataLoader of dict batches... (see :func:`attribute_dataset`).
    ``vocab``: a tokenizer, a list of token names, or ``None``. ``layer``: the layer
    attributed to (default: the model's ``nn.Embedding``). ``method``: one of
    :data:`TEXT_METHODS`. ``target``: ``"pred"``, ``"label"`` or a class index. One pass:
    the first ``n_examples`` samples are kept as examples as the batches go by. ``kwargs``
    go to the method (``baselines=`` a pad id, ``internal_batch_size=``). ``counterfactual``:
    a :func:`netxray.counterfactual` result to show beside the attributions.
    """
    from netxray.attribution import attribute_dataset

    if isinstance(data, TokenDataset):
        vocab = vocab if vocab is not None else (data.vocab or None)
        class_names = class_names or (data.class_names or None)
        data = data.batches()
    if n_examples < 0:
        raise ValueError(f"n_examples must be >= 0, got {n_examples}")
    name = token_namer(vocab)
    layer = layer if layer is not None else embedding_layer(model)
    m = _text_method(model, layer, method)
    if method == "integrated_gradients":
        kwargs = {"n_steps": n_steps, **kwargs}
    examples = _Examples(model, n_examples, name, output)

    def each(attr: Attribution, batch: Batch) -> None:
        examples(attr, batch)
        if on_batch is not None:
            on_batch(attr, batch)

    result = attribute_dataset(
        m, data, target=target, batch_size=batch_size, labels=labels, mask=mask, output=output,
        input_key=input_key, on_batch=each, **kwargs,
    )  # type: ignore[arg-type]
    if result.tokens is None:
        raise ValueError(
            f"layer {layer!r} does not give one vector per token id; pass layer= the embedding"
        )
    k = max(result.n_classes, len(class_names or ()))
    names = tuple(class_names) if class_names else tuple(str(c) for c in range(k))
    if len(names) < result.n_classes:
        raise ValueError(
            f"class_names has {len(names)} names but the data has {result.n_classes} classes"
        )
    return TextAnalysis(
        title=title,
        class_names=names,
        attribution=result,
        token_names=tuple(name(result.tokens.token_ids)),
        examples=tuple(examples.tokens),
        example_scores=examples.padded(),
        example_labels=np.asarray(examples.labels, dtype=np.int64),
        example_preds=np.asarray(examples.preds, dtype=np.int64),
        example_targets=np.asarray(examples.targets, dtype=np.int64),
        example_delta=np.asarray(examples.delta, dtype=np.float64),
        subtitle=subtitle,
        meta={"sequences": result.n_samples, "tokens": int(result.tokens.count().sum()),
              "method": result.method, "layer": layer},
        accuracy=examples.correct / examples.labelled if examples.labelled else None,
        counterfactual=counterfactual,
    )


def write_text_explanation(
    model: nn.Module, dataset: TokenDataset, *, method: str = "integrated_gradients",
    target: int | str = "pred", layer: str | None = None, out: Path,
    n_steps: int = 32,
) -> list[Path]:
    """``netxray explain`` on token ids: every real token's score (``token_scores.csv``),
    per-token-id statistics (``token_stats.csv``), the bundle (``text.npz``) and a report
    with the Text section (``report.html``)."""
    from netxray.report.writers import write_text_files

    name = token_namer(dataset.vocab or None)
    rows: list[tuple[int, int, int, str, float]] = []
    seen = [0]

    def keep(attr: Attribution, batch: Batch) -> None:
        ids = attr.inputs if isinstance(attr.inputs, torch.Tensor) else attr.inputs[0]
        v = attr.values.detach()
        scores = v.reshape(v.shape[0], v.shape[1], -1).sum(-1).double().cpu()
        real = (torch.ones(ids.shape, dtype=torch.bool) if batch.mask is None
                else batch.mask.bool()).cpu()
        ids = ids.cpu()
        for i in range(batch.size):
            pos = torch.nonzero(real[i]).flatten()
            toks = name(ids[i, pos])
            rows.extend((seen[0] + i, int(p), int(ids[i, p]), t, float(scores[i, p]))
                        for p, t in zip(pos, toks, strict=True))
        seen[0] += batch.size

    text = analyze_text(
        model, dataset, method=method, target=target, layer=layer, n_steps=n_steps,
        title=f"netxray explain: {method} on {dataset.name}",
        subtitle=f"{type(model).__name__} on {len(dataset)} sequences; target: {target}",
        on_batch=keep,
    )
    return write_text_files(text, rows, out)
