"""Token integrated gradients: netxray's LayerIntegratedGradients vs Captum's, side by side.

A 6-layer BERT-style classifier from a small ``BertConfig`` (random weights, no download),
padded sentences with an attention mask, attribution to the word embeddings. Both get the
same ``n_steps``, rule and ``internal_batch_size``; their values agree within 1e-5 (checked
here before timing). The floor is the least work: one hand-written forward+backward per
chunk with the layer's output swapped for the interpolated points.

    .venv/bin/python benchmarks/bench_token_attribution.py          # ~1-2 minutes
    .venv/bin/python benchmarks/bench_token_attribution.py --quick  # smaller, ~30 s

Writes benchmarks/results/token_attribution.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_attribution.py

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import netxray  # noqa: E402

try:
    from benchmarks._common import markdown_table, write_result
except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
    from _common import markdown_table, write_result  # type: ignore[no-redef]

torch.set_num_threads(2)
warnings.filterwarnings("ignore")


class Logits(nn.Module):
    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=ids, attention_mask=mask).logits


def model_and_batch(hidden: int, batch: int, seq: int):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=1000, hidden_size=hidden, num_hidden_layers=6, num_attention_heads=4,
        intermediate_size=2 * hidden, max_position_embeddings=128, num_labels=3,
    )  # fmt: skip
    model = Logits(BertForSequenceClassification(cfg)).eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 1000, (batch, seq), generator=g)
    lengths = torch.randint(seq // 3, seq + 1, (batch,), generator=g)
    mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
    return model, ids.masked_fill(mask == 0, 0), mask


def floor(model, layer, ids, mask, n_steps, ibs):
    """One forward+backward per chunk, target picked by gather: the least work."""
    with torch.no_grad():
        a, b = layer(ids), layer(torch.zeros_like(ids))
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    al = torch.tensor(0.5 * (nodes + 1), dtype=a.dtype)
    wt = torch.tensor(0.5 * weights, dtype=a.dtype)
    n = ids.shape[0]
    k = max(1, ibs // n)
    total = torch.zeros_like(a)
    for s in range(0, n_steps, k):
        kk = min(k, n_steps - s)
        pts = (b[None] + al[s : s + kk, None, None, None] * (a - b)[None]).reshape(kk * n, *a.shape[1:])
        pts.requires_grad_(True)
        h = layer.register_forward_hook(lambda _m, _i, _o, p=pts: p)
        try:
            out = model(ids.repeat(kk, 1), mask.repeat(kk, 1))
        finally:
            h.remove()
        (g,) = torch.autograd.grad(out[:, 1].sum(), pts)
        total += (wt[s : s + kk].view(-1, 1, 1, 1) * g.view(kk, n, *a.shape[1:])).sum(0)
    return total * (a - b)


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts)


def measure(hidden: int, batch: int, seq: int, n_steps: int, ibs: int, repeats: int) -> list:
    """One row of the table: both methods checked equal, then timed."""
    import captum.attr as ca

    model, ids, mask = model_and_batch(hidden, batch, seq)
    name = "hf.bert.embeddings.word_embeddings"
    layer = dict(model.named_modules())[name]
    ours_m = netxray.LayerIntegratedGradients(model, layer=name)
    cap_m = ca.LayerIntegratedGradients(model, layer)

    def ours():
        return ours_m.attribute(ids, target=1, additional_forward_args=(mask,),
                                n_steps=n_steps, internal_batch_size=ibs)  # fmt: skip

    def captum():
        return cap_m.attribute(ids, target=1, additional_forward_args=(mask,), n_steps=n_steps,
                               internal_batch_size=ibs, return_convergence_delta=True)  # fmt: skip

    res, (ref, delta) = ours(), captum()
    err = max(float((res.values - ref).abs().max()), float((res.delta - delta).abs().max()))
    assert err < 1e-5, err
    t_ours, m_ours = timed(ours, repeats)
    t_cap, m_cap = timed(captum, repeats)
    t_floor, _ = timed(lambda: floor(model, layer, ids, mask, n_steps, ibs), repeats)
    row = [
        f"h={hidden}, {batch}x{seq}", n_steps, ibs, f"{t_ours * 1e3:.0f}",
        f"{t_cap * 1e3:.0f}", f"{t_floor * 1e3:.0f}", f"{t_cap / t_ours:.2f}",
        f"{m_cap / m_ours:.2f}", f"{err:.1e}",
    ]  # fmt: skip
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    repeats = 3 if quick else 5
    settings = [(32, 8, 16, 50, 64)] if quick else [
        (32, 8, 16, 50, 64), (32, 8, 16, 50, 400), (64, 8, 32, 50, 100), (64, 16, 64, 20, 320),
    ]  # fmt: skip
    load_start = os.getloadavg()[0]
    rows = [measure(*setting, repeats) for setting in settings]
    load_end = os.getloadavg()[0]
    table = markdown_table(
        ["6-layer BERT, batch x seq", "n_steps", "internal_batch_size", "netxray ms (median)",
         "Captum ms (median)", "floor ms", "Captum / netxray (median)", "(by the minimum)",
         "max |diff|"],
        rows,
    )  # fmt: skip
    write_result(
        "token_attribution",
        "Token integrated gradients: netxray vs Captum's LayerIntegratedGradients",
        table + "\n\nMedians of "
        f"{repeats} runs after a warm-up, 2 threads, on a 2-core machine (load average "
        f"{load_start:.1f} at the start, {load_end:.1f} at the end): treat ratios within ~10% "
        "as equal.",
    )


if __name__ == "__main__":
    main()
