"""sync() across two gloo processes gives the single-process statistics."""

import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from netxray.stats import UnitStats, collect_stats

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(120)]

WORLD = 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(301, 4, generator=g, dtype=torch.float64) * 3 + 1
    X[5, 2] = float("nan")
    X[200, 1] = float("inf")
    y = torch.randint(0, 3, (301,), generator=g)
    return X, y


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()


def _worker(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        X, y = _data()
        part = slice(0, 120) if rank == 0 else slice(120, None)  # unequal halves
        u = UnitStats(saturation=(-1.0, 1.0), hist_range=(-5.0, 5.0), bins=10)
        u.update(X[part][:50]).update(X[part][50:])
        u.sync()
        got = u.compute()
        finite = torch.isfinite(X).all(1)
        Xf, yf = X[finite], y[finite]
        half = slice(0, 100) if rank == 0 else slice(100, None)
        stats = collect_stats(_model(), (Xf[half], yf[half]), gradients=True, batch_size=33)
        np.savez(
            f"{out_dir}/rank{rank}.npz",
            **{f"u_{k}": v for k, v in got.items()},
            s_mean=stats["1"].mean, s_var=stats["1"].var, s_count=stats["1"].count,
            s_grad=stats["1"].grad_abs_mean, s_gnorm=stats["1"].grad_norm,
            p_grad=stats.params["0.weight"].grad_norm, n=stats.n_samples, loss=stats.loss,
        )
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_give_the_single_process_statistics(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    X, y = _data()
    ref = UnitStats(saturation=(-1.0, 1.0), hist_range=(-5.0, 5.0), bins=10).update(X).compute()
    finite = torch.isfinite(X).all(1)
    single = collect_stats(_model(), (X[finite], y[finite]), gradients=True, batch_size=64)
    for rank in range(WORLD):
        got = np.load(tmp_path / f"rank{rank}.npz")
        for k, v in ref.items():
            if k in ("count", "total", "nan_count", "inf_count", "hist"):
                np.testing.assert_array_equal(got[f"u_{k}"], v)
            else:
                np.testing.assert_allclose(got[f"u_{k}"], v, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got["s_mean"], single["1"].mean, rtol=1e-12)
        np.testing.assert_allclose(got["s_var"], single["1"].var, rtol=1e-12)
        np.testing.assert_array_equal(got["s_count"], single["1"].count)
        np.testing.assert_allclose(got["s_grad"], single["1"].grad_abs_mean, rtol=1e-10)
        assert float(got["s_gnorm"]) == pytest.approx(single["1"].grad_norm, rel=1e-10)
        assert float(got["p_grad"]) == pytest.approx(single.params["0.weight"].grad_norm, rel=1e-10)
        assert int(got["n"]) == single.n_samples
        assert float(got["loss"]) == pytest.approx(single.loss, rel=1e-12)
