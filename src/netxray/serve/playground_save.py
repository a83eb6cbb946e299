""""Save this run": a playground's training recorded in a run store, with its report.

The session is deterministic (seeded data, initialisation and batch order), so the run is
recorded by training the same config for the same number of epochs again under
:func:`netxray.watch`, in a fresh session: the live one goes on untouched, and the store
holds exactly the run the page showed (same weights at the same epoch). The store goes to
``runs_dir/playground-YYYYmmdd-HHMMSS/run.sqlite``, where ``netxray serve``'s viewer lists
it, and its Training report beside it as ``report.html``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from netxray.data import Dataset
from netxray.serve.playground import PlaygroundSession
from netxray.serve.playground_config import PlayConfig, to_dict, to_query
from netxray.serve.settings import Limits

__all__ = ["RUN_NAME", "SavedRun", "save_run"]

#: the folder names "save this run" writes (and the report route accepts)
RUN_NAME = re.compile(r"^playground-\d{8}-\d{6}(-\d{1,3})?$")
#: most epochs a saved run replays (a longer session saves its first this many)
MAX_SAVED_EPOCHS = 5000
_SNAPSHOTS = 24


@dataclass(frozen=True)
class SavedRun:
    """Where a saved run went: its ``name`` (folder), the run store's folder ``path``, the
    report ``report`` and the ``epochs`` recorded."""

    name: str
    path: Path
    report: Path
    epochs: int


def _new_folder(runs_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        name = f"playground-{stamp}" + (f"-{i}" if i else "")
        folder = runs_dir / name
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"could not find a free run folder in {runs_dir}")


def save_run(config: PlayConfig, epochs: int, runs_dir: Path, limits: Limits,
             uploaded: Dataset | None = None) -> SavedRun:
    """Train ``config`` for ``epochs`` epochs under :func:`netxray.watch` into a new run
    store in ``runs_dir``; write its Training report; return where they are."""
    from netxray.monitor import watch
    from netxray.run_analysis import write_run_report

    if epochs < 1:
        raise ValueError("nothing to save yet: train at least one epoch (press play or step)")
    epochs = min(int(epochs), MAX_SAVED_EPOCHS)
    session = PlaygroundSession(config, limits, uploaded)
    per_epoch = -(-session.X.shape[0] // (config.batch_size or session.X.shape[0]))
    steps = epochs * per_epoch
    folder = _new_folder(Path(runs_dir))
    meta = {"source": "netxray playground", "url_state": to_query(config),
            "playground": to_dict(config), "dataset": config.dataset,
            "activation": config.activation, "lr": config.lr, "epochs": epochs,
            "steps": steps, "classes": list(session.class_names), "features": ["x1", "x2"]}
    if config.preset:
        meta["preset"] = config.preset
    with watch(session.model, folder, every=max(1, steps // 500),
               snapshot_every=max(1, -(-steps // _SNAPSHOTS)), probe=(session.X, session.y),
               alarms=lambda finding, step: None, config=meta, snapshot_resolution=48,
               drop_snapshots=False) as w:
        for _ in range(epochs):
            session.train_epoch(watch=w)
    report = write_run_report(folder, folder / "report.html")
    return SavedRun(name=folder.name, path=folder, report=report, epochs=epochs)
