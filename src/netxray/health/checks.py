"""Entry points: :func:`diagnose` (a model and data), :func:`precheck` (before training)
and :func:`diagnose_stats` (statistics you already have, e.g. from a training-loop monitor).

Each collects or takes statistics (:func:`netxray.stats.collect_stats`), applies the rules
of :mod:`netxray.health.rules` and returns a :class:`HealthReport`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from netxray._progress import count_batches
from netxray.batches import Batch, BatchFormat, LabelSpec, MaskSpec, OutputSpec
from netxray.health.findings import Finding, HealthReport, Thresholds, _fmt, _sorted
from netxray.health.history_rules import _rule_loss_rising, weight_findings
from netxray.health.rules import (
    _rule_constant,
    _rule_dead_dying,
    _rule_exploding_activations,
    _rule_gradients,
    _rule_nonfinite,
    _rule_saturated,
)
from netxray.stats import default_loss  # noqa: F401  (re-exported: netxray.health.default_loss)

if TYPE_CHECKING:
    from netxray.stats import NetworkStats
    from netxray.weights import WeightHealth


def diagnose_stats(
    stats: NetworkStats,
    *,
    history: Any = None,
    weights: WeightHealth | None = None,
    steps: int | None = None,
    thresholds: Thresholds | None = None,
    context: str = "diagnose",
    expected_loss: float | None = None,
    extra: Sequence[Finding] = (),
    pretrained: bool = False,
) -> HealthReport:
    """Apply every rule to statistics already collected; return a :class:`HealthReport`.

    ``history``: a TrainingHistory (or a list of per-epoch losses) to check for divergence;
    ``weights``: a :class:`netxray.weights.WeightHealth` (with ``steps``, the number of
    optimizer steps between its two checkpoints, update ratios are judged).
    ``pretrained``: the weights come from pre-training, so advice never says to
    re-initialise; with a ``history`` or ``steps`` they count as fine-tuned since, and
    the advice turns to the fine-tuning (learning rate, warm-up).
    """
    th = thresholds or Thresholds()
    case = context
    if pretrained:
        case = "finetuned" if history is not None or steps is not None else "pretrained"
    skipped: list[str] = []
    findings = _rule_nonfinite(stats, history)
    rest: list[Finding] = []
    if weights is not None:
        rest = weight_findings(weights, steps=steps, thresholds=th)
    if findings:
        skipped.append(
            "every other check: values are non-finite (or the loss diverged), so statistics "
            "computed from them would give misleading advice"
        )
    else:
        findings = list(extra) + rest + _rule_loss_rising(history, th)
        for s in stats.values():
            findings += _rule_dead_dying(s, th, case)
            findings += _rule_saturated(s, th, case)
            findings += _rule_constant(s, th, case)
        findings += _rule_exploding_activations(stats, th, case)
        if any(s.grad_norm is not None for s in stats.values()):
            findings += _rule_gradients(stats, th, case)
        elif any(p.grad_norm is not None for p in stats.params.values()):  # (targets given)
            skipped.append(
                "gradients: no selected layer's output has one (it depends on no parameter, "
                "as a layer on the inputs, or the loss does not use it); select layers "
                "between the parameters and the loss to check them"
            )
        else:
            skipped.append("gradients: pass targets (or a loss_fn) to check them")
    return HealthReport(
        findings=_sorted(findings, list(stats)),
        stats=stats,
        n_samples=stats.n_samples,
        loss=stats.loss,
        expected_loss=expected_loss,
        weights=weights,
        skipped=tuple(skipped),
        context=context,
        pretrained=pretrained,
    )


def is_pretrained(model: nn.Module) -> bool:
    """Whether ``model`` was loaded from pretrained weights, as far as it tells: a
    HuggingFace model loaded with ``from_pretrained`` carries the checkpoint's name or path
    in ``model.config._name_or_path`` (empty for a model built from a config)."""
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or getattr(model, "name_or_path", None)
    return isinstance(name, str) and bool(name.strip())


def _read(data: Any, batch_size: int, fmt: BatchFormat) -> tuple[Batch, Iterator[Batch]]:
    """The first batch, and every batch (the first one replayed): read once, so one-shot
    generators and loaders work."""
    from netxray.batches import read_batches

    it = read_batches(data, batch_size, fmt)
    first = next(it)

    def replay() -> Iterator[Batch]:
        yield first
        yield from it

    return first, replay()


def diagnose(
    model: nn.Module,
    data: Any,
    layers: Any = None,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    history: Any = None,
    previous_weights: Any = None,
    steps: int | None = None,
    batch_size: int = 1024,
    labels: LabelSpec = "labels",
    mask: MaskSpec = "attention_mask",
    output: OutputSpec = None,
    batch_format: BatchFormat | None = None,
    pretrained: bool | None = None,
    thresholds: Thresholds | None = None,
    allow_train: bool = False,
    bins: int = 32,
    progress: bool | None = None,
) -> HealthReport:
    """Run ``model`` over ``data`` and report what is wrong with it, in plain words.

    ``data``: a tensor, an ``(X, y)`` pair, a dict of arrays, a DataLoader or an iterable
    of batches (tensors, tuples, dicts or HF ``BatchEncoding``s passed as keyword
    arguments); ``labels``/``mask``/``output`` (or one ``batch_format``) say where the
    targets and the attention mask are and which output the loss uses, as in
    :func:`netxray.collect_stats`; padding never counts. With targets, gradients are checked
    too (``loss_fn`` must return the batch mean; by default a HuggingFace model given the
    labels supplies its own loss, next-token for a causal LM, and other models get
    cross-entropy for integer targets, MSE for float ones). ``history``: the
    TrainingHistory (checked for divergence).
    ``previous_weights``: an earlier state dict (or model) to measure update ratios against,
    over ``steps`` optimizer steps. ``pretrained``: whether the weights come from
    pre-training, which changes the advice (never "re-initialise"); ``None`` asks the model
    (:func:`is_pretrained`). The model's weights, mode, ``.grad`` and ``requires_grad`` are
    left as they were. ``bins``: histogram bins per unit kept in the report's statistics.
    ``progress``: a bar over the batches (see :mod:`netxray._progress`; ``None``: when long).
    """
    from netxray.stats._collect import _collect, resolve_format
    from netxray.weights import weight_health

    fmt = resolve_format(labels, mask, output, batch_format)
    first, batches = _read(data, batch_size, fmt)
    has_y = first.labels is not None
    stats = _collect(model, batches, fmt, layers, gradients=has_y,
                     loss_fn=loss_fn if has_y else None, allow_train=allow_train, bins=bins,
                     progress=progress, desc="diagnose", total=count_batches(data, batch_size))
    weights = weight_health(model, previous_weights)
    return diagnose_stats(stats, history=history, weights=weights, steps=steps,
                          thresholds=thresholds,
                          pretrained=is_pretrained(model) if pretrained is None else pretrained)


def precheck(
    model: nn.Module,
    data: Any,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    layers: Any = None,
    batch_size: int = 1024,
    labels: LabelSpec = "labels",
    mask: MaskSpec = "attention_mask",
    output: OutputSpec = None,
    batch_format: BatchFormat | None = None,
    thresholds: Thresholds | None = None,
    bins: int = 32,
    progress: bool | None = None,
) -> HealthReport:
    """Check a model before training: loss at init against ln(classes), activation scale
    per layer, dead/saturated units and gradient flow at init.

    For a classifier with C balanced classes, an untrained network should predict about
    uniformly, so its cross-entropy should be near ln(C); much higher means the output
    layer starts overconfident (per token for a language model: C is its vocabulary).
    ``data`` and ``labels``/``mask``/``output``/``batch_format`` as in :func:`diagnose`.
    Returns a :class:`HealthReport` (``expected_loss`` set). ``progress`` as in :func:`diagnose`.
    """
    from netxray.stats._collect import _collect, resolve_format

    th = thresholds or Thresholds()
    fmt = resolve_format(labels, mask, output, batch_format)
    first, batches = _read(data, batch_size, fmt)
    y0 = first.labels
    has_y = y0 is not None
    stats = _collect(model, batches, fmt, layers, gradients=has_y,
                     loss_fn=loss_fn if has_y else None, bins=bins, progress=progress,
                     desc="precheck", total=count_batches(data, batch_size))
    expected = None
    extra: list[Finding] = []
    classes = None
    out_shape = stats.output_shape
    if has_y and loss_fn is None and not y0.is_floating_point() and len(out_shape) == 1:
        classes = out_shape[0]
    if classes is not None and classes >= 2:
        expected = math.log(classes)
        loss = stats.loss
        if loss is not None and math.isfinite(loss) and loss > th.initial_loss_ratio * expected:
            extra.append(
                Finding(
                    kind="initial_loss",
                    severity="warning",
                    layer=None,
                    units=(),
                    evidence={"loss": loss, "expected": expected, "classes": classes},
                    advice=(
                        f"The loss at init is {_fmt(loss)}, {loss / expected:.1f}x ln({classes}) "
                        f"= {_fmt(expected)}, the loss of a uniform guess: the untrained network "
                        "is confidently wrong, and the first steps will be spent shrinking the "
                        "logits. Common causes: a last layer initialised too large, unscaled "
                        "inputs. Try: scale the last layer's weights down (e.g. x0.01), "
                        "standardize the inputs."
                    ),
                )
            )
    return diagnose_stats(stats, thresholds=th, context="precheck", expected_loss=expected,
                          extra=extra)
