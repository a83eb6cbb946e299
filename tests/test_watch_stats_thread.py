"""The watch's statistics thread: on when a core is spare, the same store as the training
thread to the last bit, bounded (the training thread waits, nothing is dropped), and its
failures surface on the training thread. (Every test of ``test_monitor.py`` also runs with
it, against NumPy.)"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import time
import warnings

import pytest
import torch
from torch import nn

import netxray
from netxray._warnings import NetxrayWarning
from netxray._watch_analysis import Recorded, StepMsg
from netxray._watch_worker import StatsWorker, spare_core
from netxray.monitor import watch
from netxray.store import run_file

_THREAD = "netxray-watch-stats"


class SharedReluNet(nn.Module):
    """Conv channels, a ReLU called twice (two layers), a tanh: every reduction path."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.fc1 = nn.Linear(4 * 6 * 6, 12)
        self.fc2 = nn.Linear(12, 12)
        self.tanh = nn.Tanh()
        self.out = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv(x)).flatten(1)
        h = self.act(self.fc1(h))
        return self.out(self.tanh(self.fc2(h)))


def _train(path, stats_thread: bool, every: int, steps: int = 7) -> None:
    model = SharedReluNet()
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(32, 1, 6, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with watch(model, path, every=every, stats_thread=stats_thread,
               alarms=lambda f, s: None) as w:
        assert (w._worker is not None) == stats_thread
        for _ in range(steps):
            loss = nn.functional.cross_entropy(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.step(loss=loss)


def _rows(path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(run_file(path))
    try:
        return {
            "steps": con.execute("SELECT step, loss FROM steps ORDER BY step").fetchall(),
            "layers": con.execute("SELECT * FROM layers ORDER BY layer_id").fetchall(),
            "layer_stats": con.execute("SELECT * FROM layer_stats ORDER BY layer_id, step").fetchall(),
            "unit_stats": con.execute("SELECT * FROM unit_stats ORDER BY layer_id, step").fetchall(),
            "param_stats": con.execute("SELECT * FROM param_stats ORDER BY param_id, step").fetchall(),
        }
    finally:
        con.close()


@pytest.mark.parametrize("handed", [0, None])  # every output's NaN/Inf sum handed over, or none
@pytest.mark.parametrize("every", [1, 3])
def test_the_stats_thread_stores_exactly_what_the_training_thread_does(tmp_path, one_thread,
                                                                        monkeypatch, every,
                                                                        handed):
    if handed is not None:
        monkeypatch.setattr("netxray._watch_worker.MIN_HANDED_BYTES", handed)
    _train(tmp_path / "inline", False, every)
    _train(tmp_path / "thread", True, every)
    inline, thread = _rows(tmp_path / "inline"), _rows(tmp_path / "thread")
    assert [r[1] for r in inline["layers"]] == ["act", "act#1", "tanh"]
    assert len(inline["layer_stats"]) == 3 * len(range(0, 7, every))
    assert len(inline["param_stats"]) == 8 * len(range(0, 7, every))
    assert inline == thread  # same kernels on identical copies, one thread each: bit for bit


def test_spare_core_compares_torch_threads_with_the_cores_this_process_may_use(
        monkeypatch, one_thread):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert spare_core()
    torch.set_num_threads(2)  # (one_thread restores the count)
    assert not spare_core()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert spare_core()


@pytest.mark.parametrize(("spare", "option", "expected"), [
    (True, None, True), (False, None, False), (True, False, False), (False, True, True)])
def test_the_thread_runs_when_asked_or_when_a_core_is_spare_and_never_outlives_the_watch(
        tmp_path, monkeypatch, spare, option, expected):
    monkeypatch.setattr("netxray.monitor.spare_core", lambda: spare)
    model = netxray.mlp([4, 8, 2], seed=0)
    with watch(model, tmp_path / "run", stats_thread=option) as w:
        assert (w._worker is not None) is expected
        assert (_THREAD in {t.name for t in threading.enumerate()}) is expected
    assert _THREAD not in {t.name for t in threading.enumerate()}
    with watch(None, tmp_path / "arrays", stats_thread=True) as w:  # nothing to copy
        assert w._worker is None


def test_a_layer_that_changes_width_is_named_at_its_forward_pass(tmp_path):
    for st in (False, True):
        model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
        with pytest.raises(ValueError, match=r"watched layer '1' output 5 units .* first output had 3"):
            with watch(model, tmp_path / f"run{st}", every=1, stats_thread=st) as w:
                model(torch.randn(4, 3))
                w.step()
                model[0] = nn.Linear(3, 5)
                model(torch.randn(4, 3))
        assert not model[1]._forward_hooks


def test_a_failing_stats_thread_stops_the_watch_with_a_clear_error(tmp_path, monkeypatch):
    def broken(self, x, *, scratch=None):
        raise MemoryError("no room for the histogram")

    model = netxray.mlp([4, 8, 2], seed=0)
    X, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with pytest.raises(RuntimeError, match=r"statistics thread failed \(MemoryError: no room"):
        with watch(model, tmp_path / "run", every=1, stats_thread=True) as w:
            monkeypatch.setattr("netxray.stats.UnitStats.update", broken)
            for _ in range(3):
                loss = nn.functional.cross_entropy(model(X), y)
                loss.backward()
                w.step(loss=loss)
                w.flush()
    assert all(not m._forward_hooks for m in model.modules())
    assert _THREAD not in {t.name for t in threading.enumerate()}


def test_the_training_thread_waits_for_a_full_queue_and_nothing_is_dropped():
    passed: list[int] = []
    gate = threading.Event()

    def forward(msg):
        gate.wait()
        passed.append(msg.step)

    worker = StatsWorker(forward, max_steps=2)

    def recorded(step: int) -> StepMsg:
        rec = Recorded(batch=1, states={}, calls={}, grad_sq={}, grad_n={})
        return StepMsg(step=step, time=0.0, loss=None, metrics={}, record=rec)

    done: list[int] = []

    def producer() -> None:
        for step in range(5):
            worker.put(recorded(step))
            done.append(step)

    t = threading.Thread(target=producer)
    t.start()
    deadline = time.monotonic() + 10  # (a loaded machine may take a while to get there)
    while len(done) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    # one message is held in forward(), two more fill the slots: the fourth put waits
    assert done == [0, 1, 2]
    gate.set()
    t.join(5)
    worker.flush()
    worker.close()
    assert passed == [0, 1, 2, 3, 4]


class ChangesItsOutput(nn.Module):
    """A GELU output scaled in place after its forward call: allowed by autograd (GELU's
    backward reads its input), and enough to make a deferred read see other values."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.act, self.out = nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(x))
        h.mul_(2.0)
        return self.out(h)


def test_an_output_changed_in_place_before_its_check_is_warned_and_checked_inline(
        tmp_path, monkeypatch):
    gate = threading.Event()
    original = StatsWorker._sum

    def after_the_forward(self, *args):  # the thread reads the output only once it changed
        gate.wait(5)
        original(self, *args)

    monkeypatch.setattr(StatsWorker, "_sum", after_the_forward)
    monkeypatch.setattr("netxray._watch_worker.MIN_HANDED_BYTES", 0)  # (a small output)
    model = ChangesItsOutput()
    X, y = torch.randn(8, 4), torch.randint(0, 2, (8,))

    def step(w) -> None:
        loss = nn.functional.cross_entropy(model(X), y)
        loss.backward()
        gate.set()
        w.step(loss=loss)
        w.flush()

    with watch(model, tmp_path / "run", every=100, layers=["act"], stats_thread=True) as w:
        step(w)  # recorded: reduced from a copy taken at the call
        gate.clear()
        step(w)  # unrecorded: the sum is read after h.mul_(2.0)
        assert w._worker is not None and "act" in w._worker._in_place
        with pytest.warns(NetxrayWarning, match=r"layer 'act'.s output is changed in place"):
            step(w)
        assert w._worker.sum("act", torch.ones(2), torch.float32) is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            step(w)  # checked on the training thread now, and no second warning
    with netxray.open_run(tmp_path / "run") as run:
        assert list(run.steps.step) == [0, 1, 2, 3]
        assert run.first_nonfinite is None


def test_outputs_waiting_for_their_sum_hold_bounded_memory_then_the_caller_sums():
    gate = threading.Event()
    worker = StatsWorker(lambda msg: None, max_held=2 * 4 * 1000, min_handed=0)
    worker._q.put((gate.wait, 5))  # the thread is busy until the gate opens
    x = torch.ones(1000)
    first, second = (worker.sum("a", x, torch.float32) for _ in range(2))
    assert first is not None and second is not None
    assert worker.sum("a", x, torch.float32) is None  # 8000 bytes wait already: sum it here
    gate.set()
    worker.flush()
    assert float(first) == float(second) == 1000.0
    assert worker.sum("a", x, torch.float32) is not None  # room again
    worker.close()


def test_only_outputs_worth_a_hand_over_are_summed_on_the_stats_thread():
    worker = StatsWorker(lambda msg: None, min_handed=4000)
    small, large = torch.full((999,), 2.0), torch.full((1000,), 2.0)  # 3996 and 4000 bytes
    assert worker.sum("small", small, torch.float32) is None  # cheaper to sum it here
    slot = worker.sum("large", large, torch.float32)
    worker.flush()
    assert slot is not None and float(slot) == 2000.0
    worker.close()


def test_forward_passes_under_inference_mode_are_watched_too(tmp_path):
    model = netxray.mlp([4, 8, 2], seed=0)
    X = torch.randn(16, 4)
    with watch(model, tmp_path / "run", every=2, stats_thread=True) as w:
        for _ in range(4):  # recorded and unrecorded steps
            with torch.inference_mode():
                model(X)
            w.step()
    with netxray.open_run(tmp_path / "run") as run:
        assert list(run.steps.step) == [0, 1, 2, 3]
        assert list(run.layer_stats("act1").step) == [0, 2]


def test_a_recorded_step_reaches_the_stats_thread_in_one_hand_off(tmp_path, monkeypatch):
    """Every wake-up of the thread takes the GIL from the training thread: a recorded
    step's work (three layers' copies, the parameter norms, the step's message, the batch of
    unrecorded steps before it) is queued together, at ``w.step()``. An unrecorded step's
    sums go at once, each: the thread reads each output while its memory is in use anyway."""
    monkeypatch.setattr("netxray._watch_worker.MIN_HANDED_BYTES", 0)  # (sums handed over too)
    monkeypatch.setattr("netxray.monitor._SEND_SECONDS", 1e9)  # (steps sent at recorded ones)
    puts: list[object] = []

    class CountingQueue(queue.SimpleQueue):
        def put(self, item, block=True, timeout=None):
            puts.append(item)
            super().put(item, block, timeout)

    monkeypatch.setattr("netxray._watch_worker.queue.SimpleQueue", CountingQueue)
    model = SharedReluNet()
    X, y = torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, tmp_path / "run", every=3, stats_thread=True,
               alarms=lambda f, s: None) as w:
        for step in range(7):
            before = len([p for p in puts if isinstance(p, list)])
            loss = nn.functional.cross_entropy(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            in_forward = [p for p in puts if isinstance(p, list)][before:]
            w.step(loss=loss)
            handed = [p for p in puts if isinstance(p, list)][before:]
            if step % 3 == 0:  # three copies, the norms, the message (and the batch)
                assert in_forward == [] and len(handed) == 1, step
                assert len(handed[0]) == 5 + (step > 0)
            else:  # a sum of each of the three outputs, at its forward call
                assert [len(p) for p in in_forward] == [1, 1, 1] == [len(p) for p in handed]
    with netxray.open_run(tmp_path / "run") as run:
        assert list(run.steps.step) == list(range(7))
