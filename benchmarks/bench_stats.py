"""Cost of per-unit statistics against the plain forward (and forward+backward) pass.

Side by side, in one run, on an MLP 784-512-256-10 and a small CNN (1x28x28 -> conv16 ->
pool -> conv32 -> pool -> fc10), batch 4096, torch.set_num_threads(2):

- plain forward (no_grad);
- ``netxray.collect_stats`` (activation statistics, reduced inside the hooks);
- "naive hooks": five separate per-unit reductions in float64 (mean, var, min, max,
  fraction > 0) -- the design the hot path replaced (DESIGN.md convention 3);
- "fastai-style hooks": per-layer mean / std / near-zero fraction, as fastai's
  ``ActivationStats`` records them. fastai is not installed here, so these hooks are written
  by hand in this file (per layer, not per unit, and no merge across batches);
- forward + backward vs ``collect_stats(gradients=True)``;
- a 6-layer BERT-style model (transformers' ``BertModel`` from a small config: hidden 256,
  4 heads, MLP 1024, random weights) on a batch of 32 sequences padded to 128 tokens
  (lengths 16-128, about 56% real): plain forward vs ``collect_stats`` with the attention
  mask (default layers: the 6 GELUs and the 6 block outputs, real tokens only) and without
  it (padding pooled in, for the cost of the token selection). Skipped without transformers.

Medians of repeats; ratios to the plain pass. Run:
``.venv/bin/python benchmarks/bench_stats.py`` (``--quick`` for a small version).
"""

from __future__ import annotations

import argparse
import os

import torch
from torch import nn

from netxray.models import mlp
from netxray.stats import collect_stats

try:
    from benchmarks._common import emit, run_interleaved
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from _common import emit, run_interleaved  # type: ignore[no-redef]

ACT = (nn.ReLU,)


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    ).eval()  # fmt: skip


def with_hooks(model: nn.Module, hook) -> None:
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, ACT)]
    return handles


def naive_hook(_m, _i, out: torch.Tensor) -> None:
    x = out.detach()
    dims = (0,) if x.ndim == 2 else (0, 2, 3)
    x64 = x.double()
    x64.mean(dims), x64.var(dims), x64.amin(dims), x64.amax(dims), (x64 > 0).double().mean(dims)


def fastai_hook(_m, _i, out: torch.Tensor) -> None:
    x = out.detach()
    x.mean().item(), x.std().item(), (x.abs() < 0.2).float().mean().item()


def bench(name: str, model: nn.Module, X: torch.Tensor, y: torch.Tensor, repeats: int) -> list:
    n = X.shape[0]

    def plain():
        with torch.no_grad():
            model(X)

    def hooked(hook):
        def run():
            handles = with_hooks(model, hook)
            try:
                with torch.no_grad():
                    model(X)
            finally:
                for h in handles:
                    h.remove()

        return run

    def fwd_bwd():
        params = list(model.parameters())
        out = model(X)
        torch.autograd.grad(nn.functional.cross_entropy(out, y), params)

    t = run_interleaved(
        {
            "plain forward": plain,
            "forward + netxray activation stats (default: no histograms)": lambda: collect_stats(
                model, X, batch_size=n
            ),
            "forward + netxray activation stats + 32-bin per-unit histograms": lambda: (
                collect_stats(model, X, batch_size=n, bins=32)
            ),
            "forward + naive float64 hooks (5 reductions)": hooked(naive_hook),
            "forward + fastai-style hooks (hand-written)": hooked(fastai_hook),
            "plain forward + backward": fwd_bwd,
            "forward + backward + netxray gradient stats": lambda: collect_stats(
                model, (X, y), gradients=True, batch_size=n
            ),
        },
        repeats,
    )
    base, base_fb = t["plain forward"], t["plain forward + backward"]
    rows = [(name, k, v, v / base) for k, v in t.items()]
    g = t["forward + backward + netxray gradient stats"]
    rows.append((name, "  (gradient stats relative to forward + backward)", g, g / base_fb))
    return rows


def bert_batch(seed: int = 0) -> tuple[nn.Module, dict]:
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.BertConfig(
        vocab_size=1000, hidden_size=256, num_hidden_layers=6, num_attention_heads=4,
        intermediate_size=1024, max_position_embeddings=128,
    )
    model = transformers.BertModel(cfg, add_pooling_layer=False).eval()
    g = torch.Generator().manual_seed(seed)
    n, seq = 32, 128
    lengths = torch.randint(16, seq + 1, (n,), generator=g)
    mask = (torch.arange(seq)[None] < lengths[:, None]).long()
    ids = torch.randint(1, 1000, (n, seq), generator=g) * mask
    return model, {"input_ids": ids, "attention_mask": mask}


def bench_bert(name: str, repeats: int) -> list:
    model, batch = bert_batch()

    def plain():
        with torch.no_grad():
            model(**batch)

    t = run_interleaved(
        {
            "plain forward": plain,
            "forward + netxray stats, attention mask (real tokens only)": lambda: collect_stats(
                model, [batch]
            ),
            "forward + netxray stats, no mask (padding pooled in)": lambda: collect_stats(
                model, [batch], mask=None
            ),
        },
        repeats,
    )
    base = t["plain forward"]
    return [(name, k, v, v / base) for k, v in t.items()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller batch, fewer repeats")
    args = ap.parse_args()
    batch = 1024 if args.quick else 4096
    repeats = 5 if args.quick else 15
    g = torch.Generator().manual_seed(0)
    rows = []
    load0 = os.getloadavg()[0]
    X = torch.randn(batch, 784, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    Xc = torch.randn(batch, 1, 28, 28, generator=g)
    torch.set_num_threads(1)
    rows += bench("MLP 784-512-256-10, 1 thread", mlp((784, 512, 256, 10), init="torch", seed=0).eval(), X, y, repeats)
    torch.set_num_threads(2)
    rows += bench("MLP 784-512-256-10", mlp((784, 512, 256, 10), init="torch", seed=0).eval(), X, y, repeats)
    rows += bench("CNN 1x28x28 c16 c32 fc", cnn(), Xc, y, max(3, repeats // 3))
    try:
        import transformers  # noqa: F401
    except ModuleNotFoundError:
        print("transformers is not installed: the BERT rows are skipped")
    else:
        torch.set_num_threads(1)
        rows += bench_bert("BERT 6x256, 32 x 128 tokens padded, 1 thread", repeats)
        torch.set_num_threads(2)
        rows += bench_bert("BERT 6x256, 32 x 128 tokens padded", repeats)
    load1 = os.getloadavg()[0]

    cmd = "python benchmarks/bench_stats.py" + (" --quick" if args.quick else "")
    lines = [
        f"# Statistics collection cost (batch {batch}, torch {torch.__version__}, "
        f"2 threads unless said, median of {repeats} (CNN: {max(3, repeats // 3)}))",
        "",
        f"Command: `{cmd}`",
        "",
        "| model | what | median ms | ratio |",
        "|---|---|---:|---:|",
    ]
    for model, what, t, r in rows:
        lines.append(f"| {model} | {what} | {t * 1e3:.1f} | {r:.2f}x |")
    lines += [
        "",
        f"Machine load average (1 min) at start / end: {load0:.1f} / {load1:.1f} on "
        f"{os.cpu_count()} cores. On a shared, loaded machine every multi-threaded kernel "
        "waits for its second thread to be scheduled, so the many small passes of the "
        "statistics pay more than the few large matmuls of the forward pass; the 1-thread "
        "rows show the cost without that effect. Variants run round-robin.",
        "",
        "The BERT rows: transformers' BertModel from a small config (6 layers, hidden 256, MLP "
        "1024, random weights), one batch of 32 sequences of 16-128 real tokens padded to 128 "
        "(about 56% real); collect_stats keeps each GELU's and block's statistics over the real "
        "tokens (one index_select per layer, then the same kernels).",
        "",
        "Ratios are to the plain forward pass of the same model, except the line marked "
        "'relative to forward + backward' line. fastai is not installed: its ActivationStats-style "
        "hooks (per-layer mean, std, near-zero fraction) are written by hand in the benchmark. "
        "netxray's statistics are per unit (count, mean, M2, min, max, active and saturated "
        "counts, NaN/Inf counts, optionally a 34-bin histogram) and merge exactly across "
        "batches; collect_stats also checks the input for NaN/Inf. Gradient statistics use "
        "the default (no histograms).",
    ]
    emit("stats", "\n".join(lines) + "\n", write=not args.quick)


if __name__ == "__main__":
    main()
