"""CUDA checks, for a machine with a GPU (this project's CI has none):

1. per-unit statistics of CUDA tensors equal the CPU's (float64 data, NaN and Inf included);
2. a watched training step never waits for the GPU on the training thread: forward,
   backward, optimizer step and ``w.step()`` run under
   ``torch.cuda.set_sync_debug_mode("error")``, recorded and unrecorded steps alike;
3. the run store of a float64 run on CUDA equals the same run's on the CPU;
4. the main APIs (activations, statistics, saliency, integrated gradients, decision
   boundary) give on a CUDA model what they give on the CPU;
5. what a watch costs on the GPU: ``bench_watch``'s MLP and CNN, batch 256 (steps that
   Python's kernel launches pace), a CIFAR-sized CNN (steps the GPU's work paces) and
   BERT-base built from its config (24 watched layers: GELUs and block outputs).

Run: ``python -m benchmarks.check_cuda`` (writes ``benchmarks/results/cuda.md``, and a copy
to ``$OUT`` when set). ``--device cpu`` runs the same comparisons CPU against CPU, as a
dry run of this script on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import netxray
from netxray.store import run_file

try:
    from benchmarks._common import emit, machine, markdown_table
    from benchmarks.bench_watch import cnn, compare
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from _common import emit, machine, markdown_table  # type: ignore[no-redef]
    from bench_watch import cnn, compare  # type: ignore[no-redef]


def _close(a: object, b: object, what: str, rtol: float) -> None:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "iub":
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12, equal_nan=True, err_msg=what)


def unit_stats(dev: str) -> str:
    g = torch.Generator().manual_seed(0)
    cases = [((256, 512), 1, None, "relu"), ((32, 16, 14, 14), 1, None, "conv"),
             ((8, 12, 32), -1, (-0.9, 0.9), "tokens, tanh band")]
    n = 0
    for shape, dim, band, _ in cases:
        x = torch.randn(*shape, generator=g, dtype=torch.float64) * 3
        for bad in (False, True):
            if bad:
                x.view(-1)[::997] = float("nan")
                x.view(-1)[5::1999] = float("inf")
            for layer_hist in (False, True):
                kw = {"unit_dim": dim, "saturation": band, "hist_range": (-4.0, 4.0),
                      "bins": 16, "layer_hist": layer_hist}
                cpu = netxray.UnitStats(**kw).update(x[: shape[0] // 2]).update(
                    x[shape[0] // 2:]).compute()
                gpu = netxray.UnitStats(**kw).update(x[: shape[0] // 2].to(dev)).update(
                    x[shape[0] // 2:].to(dev)).compute()
                for k in cpu:
                    _close(gpu[k], cpu[k], f"{shape} nan={bad} {k}", 1e-9)
                n += 1
    return f"{n} cases (2-D, conv channels, tokens; with and without NaN/Inf; per-unit and layer histograms) equal to 1e-9"


def _train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, path: Path, every: int,
           steps: int, strict: bool) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with netxray.watch(model, path, every=every, alarms=lambda f, s: None) as w:
        for _ in range(steps):
            if strict:
                torch.cuda.set_sync_debug_mode("error")
            try:
                loss = nn.functional.cross_entropy(model(X), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                w.step(loss=loss)
            finally:
                if strict:
                    torch.cuda.set_sync_debug_mode(0)


def no_sync(dev: str) -> str:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (64,), generator=g).to(dev)
    with tempfile.TemporaryDirectory() as d:
        for name, model, X in [
                ("MLP", netxray.mlp([784, 128, 64, 10], seed=0),
                 torch.randn(64, 784, generator=g)),
                ("CNN", cnn(), torch.randn(64, 1, 28, 28, generator=g))]:
            path = Path(d) / name
            _train(model.to(dev), X.to(dev), y, path, every=3, steps=8,
                   strict=dev.startswith("cuda"))
            with netxray.open_run(path) as run:
                assert len(run.steps.step) == 8, name
                for layer in run.layers:
                    assert len(run.layer_stats(layer).step) == 3, (name, layer)
    return "MLP and CNN, 8 steps at every=3: no synchronising call on the training thread"


class _Tokens(nn.Module):
    """Per-token layers under an attention mask, called as a transformers model is."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.fc, self.act, self.out = (nn.Embedding(50, 16), nn.Linear(16, 16),
                                                 nn.GELU(), nn.Linear(16, 3))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(self.emb(input_ids)))
        m = attention_mask[..., None].to(h.dtype)
        return self.out((h * m).sum(1) / m.sum(1))


def token_syncs(dev: str) -> str:
    """How many synchronising calls a watched step makes with per-token layers (picking the
    real tokens out of a padded batch reads their count back)."""
    import warnings

    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 50, (16, 12), generator=g).to(dev)
    mask = (torch.arange(12)[None, :] < torch.randint(4, 13, (16, 1), generator=g)).to(dev)
    y = torch.randint(0, 3, (16,), generator=g).to(dev)
    model = _Tokens().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    counts: dict[bool, list[int]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as d, netxray.watch(model, Path(d) / "run", every=2,
                                                           alarms=lambda f, s: None) as w:
        for step in range(6):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    loss = nn.functional.cross_entropy(model(ids, attention_mask=mask), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    w.step(loss=loss)
                finally:
                    torch.cuda.set_sync_debug_mode(0)
            counts[step % 2 == 0].append(sum("synchroniz" in str(x.message) for x in seen))
    return (f"per-token layers under an attention mask: {max(counts[True])} synchronising "
            f"calls per recorded step, {max(counts[False])} per unrecorded step")


def _rows(path: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(run_file(path))
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("layer_stats", "param_stats")}
    finally:
        con.close()


def same_store(dev: str) -> str:
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(128, 20, generator=g, dtype=torch.float64), torch.randint(0, 3, (128,), generator=g)
    with tempfile.TemporaryDirectory() as d:
        rows = {}
        for run, where in (("host", "cpu"), ("device", dev)):
            model = netxray.mlp([20, 32, 16, 3], seed=0).double().to(where)
            _train(model, X.to(where), y.to(where), Path(d) / run, every=2, steps=6,
                   strict=False)
            rows[run] = _rows(Path(d) / run)
        for table, cpu_rows in rows["host"].items():
            gpu_rows = rows["device"][table]
            assert len(cpu_rows) == len(gpu_rows) > 0, table
            for a, b in zip(cpu_rows, gpu_rows, strict=True):
                for i, (u, v) in enumerate(zip(a, b, strict=True)):
                    if isinstance(u, bytes):
                        assert u == v, (table, a[:2], i)
                    elif isinstance(u, float) and isinstance(v, float):
                        _close(v, u, f"{table} {a[:2]} column {i}", 1e-6)
                    else:
                        assert u == v, (table, a[:2], i, u, v)
    return "float64 MLP, 6 steps at every=2: layer and parameter rows equal to 1e-6, histograms exactly"


def apis(dev: str) -> str:
    g = torch.Generator().manual_seed(2)
    X = torch.randn(64, 2, generator=g, dtype=torch.float64)
    cpu_model = netxray.mlp([2, 16, 16, 3], seed=0).double().eval()
    gpu_model = netxray.mlp([2, 16, 16, 3], seed=0).double().eval().to(dev)
    checks: list[tuple[str, Callable[[nn.Module, torch.Tensor], np.ndarray]]] = [
        ("activations", lambda m, x: netxray.activations(m, x)[next(iter(
            netxray.activations(m, x).layers))]),
        ("collect_stats", lambda m, x: np.stack([
            s.frac_active for s in netxray.collect_stats(m, x).layers.values()])),
        ("Saliency", lambda m, x: netxray.Saliency(m).attribute(x, target="pred").values),
        ("IntegratedGradients", lambda m, x: netxray.IntegratedGradients(m).attribute(
            x, target="pred").values),
        ("decision_boundary", lambda m, x: netxray.decision_boundary(
            m, x, resolution=32).probs),
    ]
    done = []
    for name, f in checks:
        a = f(cpu_model, X)
        b = f(gpu_model, X.to(dev))
        _close(_numpy(b), _numpy(a), name, 1e-9)
        done.append(name)
    return ", ".join(done) + ": CUDA equals CPU to 1e-9 (float64)"


def _numpy(v: object) -> np.ndarray:
    return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)


def cost(dev: str, rounds: int) -> list[list[object]]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (256,), generator=g).to(dev)
    x = torch.randn(256, 784, generator=g).to(dev)
    xc = torch.randn(256, 1, 28, 28, generator=g).to(dev)
    with tempfile.TemporaryDirectory() as d:
        rows = compare("MLP 784-512-256-10", netxray.mlp([784, 512, 256, 10], seed=0).to(dev),
                       x, y, 10, rounds, Path(d))
        rows += compare("CNN 1x28x28 c16 c32 fc", cnn().to(dev), xc, y, 10, rounds // 2, Path(d))
        xl = torch.randn(256, 3, 32, 32, generator=g).to(dev)
        rows += compare("CNN 3x32x32 c64 c64 c128 c128 fc (CIFAR-sized)", _cifar_cnn().to(dev),
                        xl, y, 10, rounds // 2, Path(d))
    return rows


class _Logits(nn.Module):
    """A transformers classifier as ``ids -> logits``, for bench_watch's training loop."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids).logits


def bert_cost(dev: str, rounds: int) -> list[list[object]]:
    """A watch on a real architecture's training: BERT-base from its config (random
    weights, nothing downloaded); a small one for the CPU dry run."""
    from transformers import BertConfig, BertForSequenceClassification

    size = {} if dev.startswith("cuda") else {"hidden_size": 64, "num_hidden_layers": 2,
                                              "num_attention_heads": 2, "intermediate_size": 128}
    torch.manual_seed(0)
    model = _Logits(BertForSequenceClassification(BertConfig(num_labels=2, **size))).to(dev)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 30522, (32, 128), generator=g).to(dev)
    y = torch.randint(0, 2, (32,), generator=g).to(dev)
    name = "BERT-base (BertConfig), batch 32 x 128 tokens" if not size else "BERT (tiny)"
    with tempfile.TemporaryDirectory() as d:
        return compare(name, model, ids, y, 10, rounds, Path(d))


def _cifar_cnn() -> nn.Module:
    """A step long enough for the GPU's work, not Python's launches, to set its pace."""
    torch.manual_seed(0)

    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(*block(3, 64), *block(64, 64), nn.MaxPool2d(2), *block(64, 128),
                         *block(128, 128), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(128 * 8 * 8, 10))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--checks-only", action="store_true", help="no timings (results file untouched)")
    args = ap.parse_args()
    dev = args.device
    name = torch.cuda.get_device_name() if dev.startswith("cuda") else "CPU (dry run)"
    results = []
    for title, check in [("statistics", unit_stats), ("no host sync in a watched step", no_sync),
                         ("run store CUDA = CPU", same_store), ("APIs CUDA = CPU", apis),
                         ("host syncs with padded tokens (information)", token_syncs)]:
        try:
            results.append([title, "pass", check(dev)])
        except Exception as e:  # every check runs; the table says which failed and why
            traceback.print_exc()
            results.append([title, "FAIL", f"{type(e).__name__}: {str(e)[:300]}"])
    rows = [] if args.checks_only else (cost(dev, args.rounds)
                                        + bert_cost(dev, max(2, args.rounds // 10)))
    text = "\n".join([
        "# CUDA: results equal the CPU's, no host sync in a watched step, and the cost",
        "",
        f"Command: `python -m benchmarks.check_cuda` ({machine()}, {name}, torch "
        f"{torch.__version__})",
        "",
        markdown_table(["check", "result", "what"], results),
        "",
        "What a watch costs on this GPU (bench_watch's variants, rounds of 10 steps in turn, "
        "each timed to the end of its GPU work):",
        "",
        markdown_table(["model", "what", "ms per step (median)", "ratio of medians",
                        "median of per-round ratios"], rows),
        "",
        "",
    ])
    out = os.environ.get("OUT")
    if out:
        Path(out, "cuda.md").write_text(text)
    emit("cuda", text, write=dev.startswith("cuda") and not args.checks_only)


if __name__ == "__main__":
    main()
