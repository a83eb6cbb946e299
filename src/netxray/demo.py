"""``netxray demo``: the lecture's experiment, reproduced to the digit, then taken further.

:func:`run` trains the lecture's model (or a variant), :func:`lecture_table` prints the
lecture's numbers, :func:`write_outputs` writes the HTML report and its PNG pictures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray import data as datasets
from netxray._checks import model_dtype
from netxray.capture import activations, default_layers
from netxray.data import Dataset
from netxray.models import mlp
from netxray.training import TrainingHistory, train

#: the lecture's first-test-point saliency is a central difference with this step
LECTURE_EPS = 1e-3


@dataclass(frozen=True)
class DemoConfig:
    """The lecture's setup by default: moons(400, 0.25, seed 5), 2-10-2 ReLU, lr 0.2, 300 epochs."""

    dataset: str = "moons"
    hidden: tuple[int, ...] = (10,)
    activation: str = "relu"
    epochs: int = 300
    lr: float = 0.2
    seed: int = 5
    n_samples: int = 400
    noise: float = 0.25
    test_size: float = 0.3
    init: str = "lecture"
    optimizer: str = "sgd"
    batch_size: int | None = None
    dtype: torch.dtype = torch.float64
    n_checkpoints: int = 12


@dataclass(frozen=True)
class DemoRun:
    """Everything the demo computed: the trained model, its data and the lecture's results."""

    config: DemoConfig
    model: nn.Module
    train: Dataset
    test: Dataset
    history: TrainingHistory
    # The next three are None when the trained network's values are NaN/Inf (it diverged).
    pca_rows: np.ndarray | None  # (n_train, 2): PCA of the last hidden layer, training set
    saliency_fd: np.ndarray | None  # (features,): the lecture's finite difference, test point 0
    saliency_grad: np.ndarray | None  # (features,): the exact gradient of the same probability
    health: Any  # netxray.health.HealthReport
    title: str = "netxray demo"
    training: str = ""  # how the model was trained, in words (shown in the report's header)

    @property
    def finite(self) -> bool:
        """False when the network's outputs are NaN/Inf, so only the health report is shown."""
        return self.pca_rows is not None


def load_dataset(config: DemoConfig) -> tuple[Dataset, Dataset]:
    """The config's dataset split into train/test; tabular sets standardised on train."""
    if config.dataset in datasets.TOY:
        ds = datasets.TOY[config.dataset](
            n_samples=config.n_samples, noise=config.noise, seed=config.seed
        )
    else:
        ds = datasets.load(config.dataset)
    if "input_shape" in ds.meta:  # an .npz of images: the demo's MLP takes them flat
        ds = replace(ds, meta={k: v for k, v in ds.meta.items() if k != "input_shape"})
    train_set, test_set = ds.split(config.test_size, config.seed)
    if config.dataset in ("iris", "wine", "breast_cancer") or config.dataset.endswith(
        (".csv", ".npz")
    ):
        train_set, test_set = datasets.standardize(train_set, test_set)
    return train_set, test_set


def checkpoint_epochs(epochs: int, n: int) -> list[int]:
    """``n`` epochs spread evenly over training, 0 (the initial weights) included."""
    return sorted({round(epochs * i / (n - 1)) for i in range(n)}) if n > 1 else [epochs]


def run(config: DemoConfig = DemoConfig(), *, progress: bool = False) -> DemoRun:
    """Train the configured MLP and compute the lecture's numbers plus a health check."""
    train_set, test_set = load_dataset(config)
    sizes = (train_set.X.shape[1], *config.hidden, train_set.n_classes)
    model = mlp(sizes, config.activation, init=config.init, seed=config.seed, dtype=config.dtype)
    history = train(
        model,
        train_set.tensors(config.dtype),
        epochs=config.epochs,
        lr=config.lr,
        optimizer=config.optimizer,
        batch_size=config.batch_size,
        test_data=test_set.tensors(config.dtype),
        checkpoints=checkpoint_epochs(config.epochs, config.n_checkpoints),
        seed=config.seed,
        progress=progress,
    )
    model.eval()
    return _finish(config, model, train_set, test_set, history, title=_title(config, sizes),
                   training=f"{config.optimizer}, lr {config.lr}, {config.epochs} epochs")


def _title(config: DemoConfig, sizes: tuple[int, ...]) -> str:
    arch = "-".join(str(s) for s in sizes)
    return f"{config.dataset}: {arch} {config.activation} MLP, lr {config.lr}, {config.epochs} epochs"


def _finish(
    config: DemoConfig,
    model: nn.Module,
    train_set: Dataset,
    test_set: Dataset,
    history: TrainingHistory,
    *,
    title: str,
    training: str,
) -> DemoRun:
    from netxray.attribution import FiniteDifference, Saliency
    from netxray.health import diagnose
    from netxray.projection import project

    dtype = model_dtype(model)
    Xtr, ytr = train_set.tensors(dtype)
    last_hidden = list(default_layers(model))[-1]
    hidden = activations(model, Xtr, layers=last_hidden)
    epochs = sorted(history.checkpoints)
    previous, steps = None, None
    if len(epochs) >= 2:  # update-to-weight ratios over the last stretch of training
        previous = history.checkpoints[epochs[-2]]
        per_epoch = 1 if config.batch_size is None else math.ceil(len(train_set) / config.batch_size)
        steps = (epochs[-1] - epochs[-2]) * per_epoch
    health = diagnose(model, (Xtr, ytr), history=history, previous_weights=previous, steps=steps)
    H = hidden.flat(last_hidden)
    if not (np.isfinite(H).all() and torch.isfinite(hidden.outputs).all()):
        return DemoRun(config, model, train_set, test_set, history, None, None, None, health,
                       title, training)
    pca = project(H, method="pca", n_components=2)

    x0 = test_set.X[:1]
    y0 = int(test_set.y[0])
    probs = nn.Sequential(model, nn.Softmax(dim=1))

    def predict_proba(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return probs(torch.as_tensor(a, dtype=dtype)).numpy()

    fd = FiniteDifference(predict_proba, eps=LECTURE_EPS).attribute(x0, target=y0)
    grad = Saliency(probs).attribute(torch.as_tensor(x0, dtype=dtype), target=y0, abs=False)
    return DemoRun(
        config=config,
        model=model,
        train=train_set,
        test=test_set,
        history=history,
        pca_rows=np.asarray(pca.coords),
        saliency_fd=fd.values.detach().cpu().numpy()[0],
        saliency_grad=grad.values.detach().cpu().numpy()[0],
        health=health,
        title=title,
        training=training,
    )


def run_preset(name: str) -> DemoRun:
    """Train one of :mod:`netxray.presets` (seconds) and analyse it as the demo does."""
    from netxray import presets

    preset = presets.get(name)
    pr = preset.run()
    config = DemoConfig(dataset=pr.data.name, epochs=len(pr.history.train_loss))
    return _finish(
        config, pr.model.eval(), pr.data, pr.test, pr.history,
        title=f"preset {name}: {preset.description}",
        training=f"the {name} preset's recipe (see the title), {len(pr.history.epochs)} epochs",
    )


#: arrays longer than this print as their first and last values (a terminal line, not 64 numbers)
SHORT_ARRAY = 8


def _short(values: np.ndarray) -> str:
    """``values`` as NumPy prints them; a long array as its ends and its length."""
    if values.size <= SHORT_ARRAY:
        return str(values)  # the lecture's two numbers, byte for byte
    with np.printoptions(threshold=SHORT_ARRAY, edgeitems=3, linewidth=1000):
        return f"{values} ({values.size} values; the report draws them all)"


def lecture_table(run: DemoRun) -> str:
    """The lecture's printout, in its exact format, from the demo's results."""
    h = run.history
    step = max(1, len(h.epochs) // 3)
    lines = []
    for epoch, loss, acc in zip(h.epochs, h.train_loss, h.train_acc, strict=True):
        if epoch % step == 0:
            lines.append(f"epoch {epoch:3d} | loss {loss:.4f} | train acc {acc:.3f}")
    lines.append("")
    if run.pca_rows is None or run.saliency_fd is None or run.saliency_grad is None:
        lines.append("PCA and saliency not computed: the network's values are NaN/Inf.")
        lines.append("See the health report below for where they first appear.")
    else:
        lines.append("First two PCA components of hidden states (first 5 rows):")
        lines.append(str(run.pca_rows[:5]))
        lines.append("")
        lines.append(f"Saliency scores for first test point: {_short(run.saliency_fd)}")
        lines.append(f"  exact gradient (autograd):          {_short(run.saliency_grad)}")
        diff = float(np.max(np.abs(run.saliency_fd - run.saliency_grad)))
        lines.append(f"  finite difference vs gradient: max |diff| = {diff:.1e}")
    if h.test_acc:
        test = f"test loss {h.test_loss[-1]:.4f} | test acc {h.test_acc[-1]:.3f}"
        lines.append("")
        lines.append(f"After {h.epochs[-1]} epochs: {test}")
    if h.diverged:
        first = next(i for i, v in enumerate(h.train_loss) if not math.isfinite(v))
        lines.append(f"Training diverged: the loss became {h.train_loss[first]} at epoch {first + 1}")
    return "\n".join(lines)


def _meta(run: DemoRun) -> dict[str, Any]:
    h = run.history
    meta: dict[str, Any] = {
        "dataset": f"{run.train.name.replace(' (train)', '')}: {len(run.train)} train, "
        f"{len(run.test)} test",
        "model": " → ".join(
            f"{n}: {type(m).__name__}" for n, m in run.model.named_children()
        ),
        "training": run.training,
    }
    if h.test_acc:
        meta["final"] = f"train acc {h.train_acc[-1]:.3f}, test acc {h.test_acc[-1]:.3f}"
    return meta


def write_outputs(run: DemoRun, out: Path, *, progress: bool | None = None) -> Path:
    """Write ``out/report.html``, the results it draws (``out/results.npz``, an
    :class:`netxray.analysis.Analysis`) and the same pictures as PNG files beside it.
    ``progress``: a bar over the report's stages (``None``: when it runs long)."""
    from netxray.analysis import analyze
    from netxray.report.build import diverged_payload, write_analysis
    from netxray.report.html import write_report
    from netxray.report.pngs import write_pngs

    out.mkdir(parents=True, exist_ok=True)
    meta = _meta(run)
    if not run.finite:  # a diverged network: its health and its training curves, nothing else
        return write_report(diverged_payload(run.title, run.health, run.history, meta),
                            out / "report.html")
    analysis = analyze(run.model, run.train, run.test, run.history, health=run.health,
                       title=run.title, subtitle="made by netxray demo", meta=meta,
                       progress=progress)
    analysis.save(out / "results.npz")
    write_pngs(analysis, out)
    return write_analysis(analysis, out / "report.html")
