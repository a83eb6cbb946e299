"""Run the example notebooks with nbclient, once per test session, and read their outputs.

Shared by tests/test_notebooks.py and the browser test that screenshots a health report.
The kernel is the ``python3`` kernel that ipykernel installs into the running interpreter's
prefix (``sys.prefix/share/jupyter/kernels``), looked up there only: a user-level
kernelspec named ``python3`` that points at another Python is never used, and a fresh CI
venv needs nothing but ipykernel installed. Its ``python`` argv becomes ``sys.executable``.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
#: seconds one cell may take (the slowest, training the small transformer, takes ~5 s alone)
CELL_TIMEOUT = 300


def notebooks() -> list[Path]:
    """Every notebook committed under examples/."""
    return sorted(EXAMPLES.glob("*.ipynb"))


def _kernel_manager() -> Any:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    specs = KernelSpecManager(kernel_dirs=[os.path.join(sys.prefix, "share", "jupyter", "kernels")])
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def executed(name: str) -> Any:
    """:func:`run_notebook`, once per session: a failure (nbclient's ``CellExecutionError``)
    is raised again, not rerun, by every later test that asks for the same notebook."""
    result = _executed(name)
    if isinstance(result, Exception):
        raise result
    return result


@functools.cache
def _executed(name: str) -> Any:
    try:
        return run_notebook(name)
    except Exception as e:  # pytest's Skipped is not an Exception: it is not cached
        return e


def run_notebook(name: str) -> Any:
    """The notebook ``examples/NAME`` after running every cell in a fresh kernel.

    Raises nbclient's ``CellExecutionError`` (with the cell and its traceback) when a cell
    fails. The kernel runs in an empty temporary folder, with one torch thread (the models
    are tiny) and matplotlib's inline backend (``MPLBACKEND`` removed).
    """
    import pytest

    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    NotebookClient = pytest.importorskip("nbclient").NotebookClient

    nb = nbformat.read(EXAMPLES / name, as_version=4)
    cwd = tempfile.mkdtemp(prefix="netxray-nb-")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["OMP_NUM_THREADS"] = "1"
    km = _kernel_manager()
    client = NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT,
        startup_timeout=120,
        resources={"metadata": {"path": cwd}},
    )
    try:
        client.execute(env=env)
    finally:  # a kernel manager passed in is not shut down by nbclient
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return nb


def outputs(nb: Any) -> list[tuple[int, dict[str, Any]]]:
    """``(cell index, output)`` for every output of every code cell, in order."""
    return [(i, out) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", [])]


def stdout(nb: Any) -> str:
    """Everything the notebook printed to standard output."""
    return "".join(o["text"] for _, o in outputs(nb)
                   if o["output_type"] == "stream" and o["name"] == "stdout")


def stderr(nb: Any) -> str:
    """Everything the notebook wrote to standard error (warnings land here)."""
    return "".join(o["text"] for _, o in outputs(nb)
                   if o["output_type"] == "stream" and o["name"] == "stderr")


def rich(nb: Any, type_name: str) -> list[tuple[int, dict[str, str]]]:
    """``(cell index, data)`` of each rich output whose plain text is a ``TYPE_NAME(...)``
    repr: the result objects a cell ended with. ``data`` maps mimetypes to content."""
    found = []
    for i, o in outputs(nb):
        if o["output_type"] in ("execute_result", "display_data"):
            plain = o["data"].get("text/plain", "")
            if plain.startswith(f"{type_name}("):
                found.append((i, o["data"]))
    return found


_FINDING_ROW = re.compile(
    r'<tr><td><span class="nx-sev nx-(\w+)">\w+</span></td><td>(\w+)</td><td>([^<]*)</td>'
)


def findings(report_html: str) -> list[tuple[str, str, str]]:
    """``(severity, kind, layer)`` of each finding in a HealthReport's HTML, in its order."""
    return _FINDING_ROW.findall(report_html)
