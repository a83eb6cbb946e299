"""Playground frames per second: server-side compute, over the event stream, and in Chromium.

The issue's target: 10 frames per second or more for the default network (TensorFlow
Playground's: circle, 500 points, 50% train, batch 10, 2-4-2-2 tanh) on this 2-core machine.
One frame is one epoch of training (25 mini-batch steps for the default) plus everything the
page shows: the decision surface (40 x 40), every unit's map (20 x 20), statistics and
findings, gradient RMS by depth, a PCA per hidden layer, the input gradient on the surface grid
(the hover arrows), and the patches as JSON.

- compute: ``session.step()`` + ``frame_message`` + ``json.dumps``, median of N frames;
- stream: uvicorn in a thread serving the router, a client reading the event stream with the
  server's pace raised to ``Limits.max_fps`` (30): frames/s over N frames;
- Chromium: the page itself, playing, with every chart redrawn per frame: frames/s that the
  page counted (skipped without /usr/bin/chromium).

    python -m benchmarks.bench_serve            # ~1 min
    python -m benchmarks.bench_serve --quick    # fewer frames, results file unchanged
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import torch

from netxray.serve.frames import frame_message
from netxray.serve.playground import PlaygroundSession
from netxray.serve.playground_config import PlayConfig, preset
from netxray.serve.settings import Limits

try:
    from benchmarks._common import markdown_table, write_result
except ModuleNotFoundError:  # run as a script
    from _common import markdown_table, write_result  # type: ignore[no-redef]

TARGET = 10.0
LIMITS = Limits()


def compute_ms(config: PlayConfig, frames: int) -> list[float]:
    session = PlaygroundSession(config, LIMITS)
    for _ in range(3):
        json.dumps(frame_message(session.step(), session.config))
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        json.dumps(frame_message(session.step(), session.config))
        times.append((time.perf_counter() - t) * 1000)
    return times


class Served:
    def __init__(self, runs: Path) -> None:
        import uvicorn
        from fastapi import FastAPI

        from netxray.serve.playground_api import make_router

        app = FastAPI()
        app.include_router(make_router(LIMITS, runs))
        torch.set_num_threads(1)  # as `netxray serve` runs
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}/"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _post(url: str, body: dict) -> None:
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()


def stream_fps(base: str, frames: int) -> tuple[float, float]:
    """(frames/s over the stream, mean kB a frame)."""
    r = urllib.request.urlopen(base + "api/play/stream", timeout=60)
    hello = json.loads(r.readline().decode()[5:])
    r.readline()
    _post(base + f"api/play/{hello['session']}/control",
          {"action": "play", "fps": LIMITS.max_fps})
    for _ in range(3):  # warm up
        r.readline(), r.readline()
    size, t = 0, time.perf_counter()
    for _ in range(frames):
        size += len(r.readline())
        r.readline()
    fps = frames / (time.perf_counter() - t)
    r.close()
    return fps, size / frames / 1000


def chromium_fps(base: str, seconds: float) -> float | None:
    if not Path("/usr/bin/chromium").exists():
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium",
                              args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(base)
        page.wait_for_selector("figure[data-chart-id=network][data-rendered='1']")
        page.click('button[data-key="play"]')
        epoch = "() => +document.documentElement.getAttribute('data-epoch')"
        page.wait_for_function("() => +document.documentElement.getAttribute('data-epoch') >= 3")
        e0, t0 = page.evaluate(epoch), time.perf_counter()
        time.sleep(seconds)
        e1, t1 = page.evaluate(epoch), time.perf_counter()
        b.close()
    return (e1 - e0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames; no results file")
    args = parser.parse_args()
    n = 20 if args.quick else 100
    load0 = os.getloadavg()[0]
    rows = []
    cases = [("default 2-4-2-2 tanh, circle, batch 10", PlayConfig()),
             ("dying_relu 2-16-16-2, moons 700, full batch", preset("dying_relu", LIMITS)),
             ("largest: 6 x 16 tanh, 2000 points, 7 features, batch 10",
              PlayConfig(n_samples=2000, hidden=(16,) * 6,
                         features=("x1", "x2", "x1^2", "x2^2", "x1x2", "sin_x1", "sin_x2")))]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, config in cases:
            ms = statistics.median(compute_ms(config, n))
            rows.append([f"compute, {threads} torch thread(s)", name, f"{ms:.1f} ms",
                         f"{1000 / ms:.1f}", f"{1000 / ms / TARGET:.1f}x"])
    with tempfile.TemporaryDirectory() as runs:
        served = Served(Path(runs))
        try:
            fps, kb = stream_fps(served.base, n)
            rows.append(["event stream (uvicorn, paced at 30 fps max)", cases[0][0],
                         f"{kb:.0f} kB a frame", f"{fps:.1f}", f"{fps / TARGET:.1f}x"])
            page = chromium_fps(served.base, 3.0 if args.quick else 10.0)
            if page is not None:
                rows.append(["Chromium: the page playing, every chart redrawn", cases[0][0],
                             "", f"{page:.1f}", f"{page / TARGET:.1f}x"])
        finally:
            served.close()
    load1 = os.getloadavg()[0]
    body = (f"One frame = one epoch of training + the surface (40 x 40), unit maps (20 x 20), "
            f"statistics, findings, gradient RMS by depth, PCA per hidden layer, the input "
            f"gradient on the surface grid (hover arrows), "
            f"as JSON patches. Median of {n} frames (compute); frames/s over {n} frames "
            f"(stream); load average {load0:.1f} before, {load1:.1f} after, on 2 cores "
            f"shared with other work.\n\n"
            + markdown_table(["where", "network", "per frame", "frames/s", "vs 10 fps target"],
                             rows)
            + "\n\nThe server runs PyTorch with one intra-op thread (`netxray serve` sets it): "
              "for networks this small a second thread only waits on the first, and under "
              "load it costs 10x.")
    if args.quick:
        print(body)
    else:
        write_result("serve", "Playground: frames per second", body)


if __name__ == "__main__":
    main()
