"""What a CLI command's ``--out FILE`` may replace.

The rule, for ``netxray report`` and ``netxray project``: ``--out`` is never a file the
command reads (the run, ``--data``, ``--weights``, the ``--model`` file), not even with
``--overwrite``; an existing regular file there is replaced only when netxray wrote it (a
netxray report; the coordinates ``project`` writes) or with ``--overwrite``. The write itself
is atomic (:mod:`netxray._io`), so a failed command leaves the old file as it was.
FIFOs and character devices (``/dev/stdout``) are written to, never replaced.

Built without torch, like the rest of the parser's side of the CLI.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["OUTPUTS", "check_out", "clear_outputs", "is_projection", "is_report", "same_file"]

#: The files each command that writes a folder (``--out DIR``) puts there, as ``fnmatch``
#: patterns (``_LAYER`` names hold a layer's name). What it writes depends on the run (a
#: diverged demo writes report.html only; token data gives other files than features), so
#: before it writes, :func:`clear_outputs` removes these: the folder never mixes two runs.
OUTPUTS: dict[str, tuple[str, ...]] = {
    "demo": (  # netxray.demo.write_outputs, report.pngs.write_pngs, text_demo.write_outputs
        "report.html", "results.npz", "boundary_evolution.gif", "training.png",
        "decision_boundary.png", "unit_maps.png", "activations_*.png", "pca_*.png",
        "tsne_*.png", "umap_*.png", "probes.png", "cka.png", "saliency.png",
        "saliency_by_class.png", "health.png", "grid_warp.png", "unit_patterns.png",
        "text.npz", "summary.json",
    ),
    "explain": (  # report.writers.write_attribution_files and write_text_files
        "report.html", "attributions.npz", "attributions.csv", "importance.png",
        "sample0.png", "by_class.png", "token_scores.csv", "token_stats.csv", "text.npz",
    ),
    "diagnose": ("report.html", "health.png"),  # report.writers.write_health_files
}

#: the line every netxray report's HTML carries (``report/web/template.html``)
_GENERATOR = b'<meta name="generator" content="netxray">'
#: the first line of a CSV that ``Projection.to_csv`` wrote: index, then METHOD1, METHOD2...
_PROJECTION_CSV = re.compile(r"^index,(pca|tsne|umap)1,\1")


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (through links, ``..`` and hard links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def is_report(path: Path) -> bool:
    """Whether ``path`` is an HTML report netxray wrote (its generator line near the top)."""
    try:
        with path.open("rb") as f:
            return _GENERATOR in f.read(4096)
    except OSError:
        return False


def is_projection(path: Path) -> bool:
    """Whether ``path`` holds coordinates ``netxray project`` wrote, in its suffix's format."""
    try:
        if path.suffix == ".csv":
            with path.open(encoding="utf-8", errors="replace") as f:
                return _PROJECTION_CSV.match(f.readline()) is not None
        if path.suffix == ".json":
            with path.open(encoding="utf-8") as f:
                doc = json.load(f)
            return isinstance(doc, dict) and {"layer", "method", "coords", "columns"} <= set(doc)
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as z:
                return "coords.npy" in z.namelist()
    except (OSError, ValueError, zipfile.BadZipFile):
        return False
    return False


def check_out(out: Path, *, inputs: Mapping[str, Path | None], ours: Callable[[Path], bool],
              what: str, overwrite: bool) -> None:
    """Refuse ``--out`` ``out`` before any work: when it is one of ``inputs`` (option ->
    path), or an existing regular file that ``ours`` does not recognise (``what`` names the
    files it does) and ``overwrite`` is off. Raises the CLI's ``InputError`` (exit 2)."""
    from netxray.cli_errors import InputError

    for option, path in inputs.items():
        if path is not None and same_file(out, path):
            raise InputError(f"--out {out} is {option}, which this command reads; writing "
                             "there would destroy it: choose another --out")
    if overwrite or not out.is_file() or ours(out):
        return
    raise InputError(f"--out {out} exists and is not {what}, so netxray will not replace it: "
                     "choose another --out, or pass --overwrite to replace it")


def clear_outputs(out: Path, command: str) -> list[Path]:
    """Remove from the folder ``out`` the files ``command`` writes there (:data:`OUTPUTS`),
    so that what it writes next is all the folder holds of it; return what was removed.
    Other files, links and folders are left alone."""
    import fnmatch

    if not out.is_dir():
        return []
    removed = []
    for p in sorted(out.iterdir()):
        if (p.is_file() and not p.is_symlink()
                and any(fnmatch.fnmatchcase(p.name, pat) for pat in OUTPUTS[command])):
            p.unlink()
            removed.append(p)
    return removed
