"""netxray attribution vs Captum vs a hand-written floor, side by side.

The floor is the least work a method can do: one batched forward+backward over every
point it evaluates (all integration steps / noisy copies stacked into batches of the same
chunk size netxray uses), with the target picked by ``gather``. Captum gets the same chunk
size (``internal_batch_size`` / ``nt_samples_batch_size``) so memory is comparable.

    .venv/bin/python benchmarks/bench_attribution.py          # full run, ~5 minutes
    .venv/bin/python benchmarks/bench_attribution.py --quick  # small inputs, ~1 minute

Writes benchmarks/results/attribution.md.
"""

from __future__ import annotations

import os

# On a shared 2-core machine OpenMP's spin-waiting threads stall each other under load (a
# 0.5 ms pass measured 100+ ms); passive waiting keeps the timings about the code. It must
# be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from netxray import attribution as nxa  # noqa: E402
from netxray.attribution._engine import _chunk_rows  # noqa: E402
from netxray.models import mlp  # noqa: E402

try:
    from benchmarks._common import emit
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from _common import emit  # type: ignore[no-redef]

torch.set_num_threads(2)
warnings.filterwarnings("ignore", category=UserWarning)


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 10),
    ).eval()  # fmt: skip


# --------------------------------------------------------------------------- floors


def _grad(model: nn.Module, xs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    xs = xs.detach().requires_grad_(True)
    out = model(xs)
    (g,) = torch.autograd.grad(out.gather(1, t[:, None]).sum(), xs)
    return g


def floor_saliency(model, x, t, rows):
    return _grad(model, x, t).abs()


def floor_ixg(model, x, t, rows):
    return _grad(model, x, t) * x


def floor_ig(model, x, t, rows, n=50):
    nodes, weights = np.polynomial.legendre.leggauss(n)
    a = torch.tensor(0.5 * (nodes + 1), dtype=x.dtype)
    w = torch.tensor(0.5 * weights, dtype=x.dtype)
    b = max(1, rows // n)
    total = torch.empty_like(x)
    for s in range(0, x.shape[0], b):
        xb = x[s : s + b]
        pts = (a.view(n, *([1] * x.ndim)) * xb.unsqueeze(0)).reshape(-1, *x.shape[1:])
        g = _grad(model, pts, t[s : s + b].repeat(n))
        total[s : s + b] = (w @ g.view(n, -1)).view_as(xb)
    return total * x


def floor_smoothgrad(model, x, t, rows, n=20, std=0.15):
    b = max(1, rows // n)
    out = torch.empty_like(x)
    for s in range(0, x.shape[0], b):
        xb = x[s : s + b]
        noisy = xb.repeat_interleave(n, 0) + std * torch.randn(xb.shape[0] * n, *x.shape[1:])
        g = _grad(model, noisy, t[s : s + b].repeat_interleave(n))
        out[s : s + b] = g.view(xb.shape[0], n, *x.shape[1:]).mean(1)
    return out


# --------------------------------------------------------------------------- methods

METHODS = {
    "Saliency": (
        lambda m, x, t, r: nxa.Saliency(m).attribute(x, target=t).values,
        lambda ca, m, x, t, r: ca.Saliency(m).attribute(x, target=t),
        floor_saliency,
    ),
    "InputXGradient": (
        lambda m, x, t, r: nxa.InputXGradient(m).attribute(x, target=t).values,
        lambda ca, m, x, t, r: ca.InputXGradient(m).attribute(x, target=t),
        floor_ixg,
    ),
    "IntegratedGradients(50)": (
        lambda m, x, t, r: nxa.IntegratedGradients(m).attribute(x, target=t).values,
        lambda ca, m, x, t, r: ca.IntegratedGradients(m).attribute(
            x, target=t, n_steps=50, internal_batch_size=r
        ),
        floor_ig,
    ),
    "SmoothGrad(20)": (
        lambda m, x, t, r: nxa.SmoothGrad(m).attribute(x, target=t, n_samples=20, seed=0).values,
        lambda ca, m, x, t, r: ca.NoiseTunnel(ca.Saliency(m)).attribute(
            x,
            target=t,
            nt_type="smoothgrad",
            nt_samples=20,
            stdevs=0.15,
            abs=False,
            nt_samples_batch_size=max(1, min(20, r // x.shape[0])),
        ),  # fmt: skip
        floor_smoothgrad,
    ),
}


def timeit(fns: dict[str, object], repeats: dict[str, int]) -> dict[str, float]:
    """Median seconds per function; repeats interleaved so machine noise hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for k, f in fns.items():  # warm-up (allocator, first-call costs)
        if repeats[k] > 1:
            f()
    for i in range(max(repeats.values())):
        for k, f in fns.items():
            if i < repeats[k]:
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small inputs, fewer repeats")
    ap.add_argument("--no-captum", action="store_true")
    args = ap.parse_args()
    import captum.attr as ca

    q = args.quick
    g = torch.Generator().manual_seed(0)
    cases = [
        (
            "MLP 2-10-2",
            mlp([2, 10, 2], init="torch", seed=0).eval(),
            torch.randn(2000 if q else 10_000, 2, generator=g),
            7,
            3,
        ),
        (
            "MLP 784-512-256-10",
            mlp([784, 512, 256, 10], init="torch", seed=0).eval(),
            torch.randn(500 if q else 10_000, 784, generator=g),
            3,
            1,
        ),
        ("CNN 28x28", cnn(), torch.randn(200 if q else 2_000, 1, 28, 28, generator=g), 3, 1),
    ]
    load_before = os.getloadavg()[0]
    rows_md = []
    for case, model, x, rep, rep_captum in cases:
        with torch.no_grad():
            t = model(x).argmax(1)
        rows = _chunk_rows(None, x)
        for name, (ours, theirs, floor) in METHODS.items():
            slow = name.startswith(("Integrated", "Smooth"))
            fns = {
                "ours": lambda o=ours, m=model, x=x, t=t, r=rows: o(m, x, t, r),
                "floor": lambda f=floor, m=model, x=x, t=t, r=rows: f(m, x, t, r),
            }
            reps = {"ours": rep, "floor": rep}
            if not args.no_captum:
                fns["captum"] = lambda c=theirs, m=model, x=x, t=t, r=rows: c(ca, m, x, t, r)
                reps["captum"] = rep_captum if slow else rep
            med = timeit(fns, reps)
            diff = ""
            if "captum" in fns and not name.startswith("Smooth"):
                d = (fns["ours"]() - fns["captum"]()).abs().max().item()
                diff = f"{d:.1e}"
            cap = med.get("captum")
            cap_ms = "" if cap is None else f"{cap * 1e3:.1f}"
            cap_ratio = "" if cap is None else f"{cap / med['ours']:.1f}"
            row = (
                f"| {case} | {name} | {med['ours'] * 1e3:.1f} | {med['floor'] * 1e3:.1f} | "
                f"{cap_ms} | {med['ours'] / med['floor']:.2f} | {cap_ratio} | {diff} |"
            )
            print(row, flush=True)
            rows_md.append(row)
    head = [
        "# Attribution: netxray vs Captum vs a hand-written floor",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_attribution.py{' --quick' if q else ''}`  ",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}. "
        "Medians of interleaved repeats (captum's slow cases: fewer repeats). "
        "Inputs float32, target = predicted class (per-sample tensor). "
        f"Load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
        "(2 cores, shared with other jobs); "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}.",
        "",
        "| model | method | ours ms | floor ms | captum ms | ours/floor | captum/ours | max abs diff vs captum |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    emit("attribution", "\n".join(head + rows_md) + "\n", write=not q)


if __name__ == "__main__":
    main()
