"""watch() under torch.distributed: statistics merged across 2 gloo ranks, rank 0 alone writes."""

import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(120)]

WORLD = 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(240, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (240,), generator=g)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()


def _worker(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    import netxray

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        X, y = _data()
        part = slice(0, 100) if rank == 0 else slice(100, None)  # unequal shares
        model = _model()
        with netxray.watch(model, f"{out_dir}/rank{rank}", every=1, bins=8,
                           alarms=lambda f, s: None) as w:
            for _ in range(3):
                loss = nn.functional.cross_entropy(model(X[part]), y[part])
                loss.backward()  # no optimizer step: every step sees the same weights
                w.step(loss=loss)
    finally:
        dist.destroy_process_group()


def test_statistics_are_merged_across_ranks_and_rank0_alone_writes(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    from netxray.store import open_run

    assert not (tmp_path / "rank1").exists()
    X, y = _data()
    model = _model()
    a = model[1](model[0](X)).detach().numpy()  # both ranks' data together
    with open_run(tmp_path / "rank0") as run:
        ls, us = run.layer_stats("1"), run.unit_stats("1")
        np.testing.assert_array_equal(ls.step, [0, 1, 2])
        for i in range(3):
            np.testing.assert_allclose(ls.mean[i], a.mean(), rtol=1e-10)
            np.testing.assert_allclose(ls.frac_active[i], (a > 0).mean(), rtol=1e-12)
            np.testing.assert_allclose(us.activity[i], (a > 0).mean(0), rtol=1e-6)
            assert ls.max[i] == a.max()
        l0 = nn.functional.cross_entropy(model(X[:100]), y[:100]).item()
        l1 = nn.functional.cross_entropy(model(X[100:]), y[100:]).item()
        np.testing.assert_allclose(run.steps.loss, (l0 + l1) / 2, rtol=1e-12)  # mean over ranks
