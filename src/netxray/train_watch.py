"""``netxray train``: the demo's and the presets' training, recorded by :func:`netxray.watch`.

:func:`train_watched` trains either a preset's recipe or the demo's MLP (a
:class:`netxray.demo.DemoConfig`) with the library's trainer while a watch writes a run store;
``netxray report RUN`` then draws it (:mod:`netxray.run_analysis`). For 2-D data the watch also
snapshots the decision surface on a schedule, so the report can animate the boundary.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from netxray._checks import model_dtype
from netxray.store import check_new_run, open_run, run_file, run_files
from netxray.store_results import FindingEvent

__all__ = ["SNAPSHOTS", "WatchedTraining", "auto_snapshot_every", "train_watched"]

#: about this many decision-surface snapshots are kept when ``snapshot_every`` is automatic
SNAPSHOTS = 12
#: the decision surface's grid side in a snapshot (the report draws it; 48 x 48 is plenty)
SNAPSHOT_RESOLUTION = 48
#: the probe batch for hidden-state snapshots holds at most this many training samples
PROBE_SAMPLES = 512


@dataclass(frozen=True)
class WatchedTraining:
    """What ``netxray train`` prints: where the run is, how many steps it holds, what the
    alarms said (``raised`` and ``cleared`` events, in order), the final training loss,
    and whether training diverged."""

    path: Path
    steps: int
    findings: tuple[FindingEvent, ...]
    final_loss: float
    diverged: bool

    @property
    def raised(self) -> tuple[FindingEvent, ...]:
        return tuple(f for f in self.findings if f.event == "raised")

    @property
    def errors(self) -> tuple[FindingEvent, ...]:
        """Raised alarms of error severity: what makes ``netxray train`` exit 1."""
        return tuple(f for f in self.raised if f.severity == "error")


def auto_snapshot_every(steps: int, n: int = SNAPSHOTS) -> int:
    """A snapshot interval that keeps about ``n`` snapshots over ``steps`` steps."""
    return max(1, math.ceil(steps / n))


def _watcher(path: Path, *, every: int, snapshot_every: int | None, overwrite: bool,
             config: dict[str, Any]) -> Any:
    """``(model, training Dataset, steps) -> netxray.watch(...)``: the watch training runs under."""
    from netxray.monitor import watch

    def make(model: nn.Module, data: Any, steps: int) -> Any:
        two_d = data.X.ndim == 2 and data.X.shape[1] == 2
        k = snapshot_every
        if k is None:  # automatic: the decision surface of 2-D problems only
            k = auto_snapshot_every(steps) if two_d else 0
        probe = None
        if k:
            X, y = data.tensors(model_dtype(model))
            probe = (X, y) if two_d else (X[:PROBE_SAMPLES], y[:PROBE_SAMPLES])
        return watch(model, path, every=every, snapshot_every=k or None, probe=probe,
                     alarms=lambda finding, step: None,  # kept in the store; the CLI prints them
                     config={**config, "steps": steps, "dataset": data.name,
                             "classes": list(data.class_names),
                             "features": list(data.feature_names)},
                     overwrite=overwrite, snapshot_resolution=SNAPSHOT_RESOLUTION,
                     drop_snapshots=False)  # offline: every frame of the animation is wanted

    return make


def train_watched(path: str | os.PathLike[str], *, preset: str | None = None,
                  config: Any = None, every: int = 1, snapshot_every: int | None = None,
                  overwrite: bool = False, progress: bool = False) -> WatchedTraining:
    """Train ``preset`` (a name from :mod:`netxray.presets`) or the demo's MLP configured by
    ``config`` (a :class:`netxray.demo.DemoConfig`; default the lecture's) while
    :func:`netxray.watch` records a run at ``path``.

    ``every``: record statistics every ``every`` optimizer steps (the loss on every step);
    ``snapshot_every``: snapshot the probe (the training set) every K steps, ``0`` never,
    ``None`` automatic (about :data:`SNAPSHOTS` snapshots for 2-D data, none otherwise).
    An existing run at ``path`` is refused unless ``overwrite``. It is moved aside, not
    deleted, while the new run is written at ``path`` (where readers follow it live), and
    comes back if training fails or is interrupted; see :func:`_replacing`.
    """
    if preset is not None and config is not None:
        raise ValueError("give a preset or a config, not both")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if snapshot_every is not None and snapshot_every < 0:
        raise ValueError(f"snapshot_every must be >= 0 (0: no snapshots), got {snapshot_every}")
    file = run_file(path)
    with _replacing(file, overwrite=overwrite):  # (the path is free inside: no overwrite)
        if preset is not None:
            history = _train_preset(preset, file, every, snapshot_every, False)
        else:
            history = _train_demo(config, file, every, snapshot_every, False, progress)
    with open_run(file) as run:
        steps = len(run.steps.step)
        findings = run.findings
    return WatchedTraining(path=file.parent if file.name == "run.sqlite" else file, steps=steps,
                           findings=findings, final_loss=float(history.train_loss[-1]),
                           diverged=history.diverged)


@contextmanager
def _replacing(file: Path, *, overwrite: bool) -> Iterator[None]:
    """Write a new run at ``file`` inside the block. With ``overwrite`` it replaces the old
    run or leaves it as it was: the old run waits beside it as ``.NAME.PID.old``, is deleted
    on success, and on an error or an interrupt comes back in place of the new one. Without
    an old run, an interrupted run that recorded steps is kept (readable up to its last
    commit, as after a crash); one that recorded none is removed."""
    backup = file.with_name(f".{file.name}.{os.getpid()}.old")
    moved = check_new_run(file, overwrite=overwrite)
    if moved:
        for side, aside in zip(run_files(file), run_files(backup), strict=True):
            if side.exists():
                os.replace(side, aside)
    try:
        yield
    except BaseException:
        if moved or not _has_steps(file):
            for side in run_files(file):
                with suppress(OSError):  # (e.g. its folder could not be made: nothing there)
                    side.unlink(missing_ok=True)
        if moved:
            for side, aside in zip(run_files(file), run_files(backup), strict=True):
                if aside.exists():
                    os.replace(aside, side)
        raise
    for aside in run_files(backup):
        aside.unlink(missing_ok=True)


def _has_steps(file: Path) -> bool:
    """Whether ``file`` is a readable run with at least one step."""
    try:
        with open_run(file) as run:
            return len(run.steps.step) > 0
    except Exception:  # (no file, a stub, a half-written schema: nothing worth keeping)
        return False


def _train_preset(name: str, file: Path, every: int, snapshot_every: int | None,
                  overwrite: bool) -> Any:
    from netxray import presets

    make = _watcher(file, every=every, snapshot_every=snapshot_every, overwrite=overwrite,
                    config={"preset": name, "command": "netxray train"})
    return presets.get(name).run(watch=make).history


def _train_demo(config: Any, file: Path, every: int, snapshot_every: int | None,
                overwrite: bool, progress: bool) -> Any:
    from netxray import demo
    from netxray.models import mlp
    from netxray.training import train

    config = config if config is not None else demo.DemoConfig()
    train_set, test_set = demo.load_dataset(config)
    sizes = (train_set.X.shape[1], *config.hidden, train_set.n_classes)
    model = mlp(sizes, config.activation, init=config.init, seed=config.seed, dtype=config.dtype)
    per_epoch = 1 if config.batch_size is None else math.ceil(len(train_set) / config.batch_size)
    make = _watcher(file, every=every, snapshot_every=snapshot_every, overwrite=overwrite,
                    config={"command": "netxray train", "hidden": list(config.hidden),
                            "activation": config.activation, "epochs": config.epochs,
                            "lr": config.lr, "seed": config.seed})
    with make(model, train_set, config.epochs * per_epoch) as w:
        return train(model, train_set.tensors(config.dtype), epochs=config.epochs, lr=config.lr,
                     optimizer=config.optimizer, batch_size=config.batch_size,
                     test_data=test_set.tensors(config.dtype), seed=config.seed,
                     progress=progress, watch=w)
