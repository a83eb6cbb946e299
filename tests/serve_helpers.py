"""A playground served by uvicorn in a thread on 127.0.0.1, for the API and browser tests."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netxray.serve.settings import Limits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_playground(runs_dir: Path, limits: Limits | None = None) -> Iterator[tuple[str, Any]]:
    """``(base URL, router)``: a FastAPI app with the playground router, served until exit."""
    import torch
    import uvicorn
    from fastapi import FastAPI

    from netxray.serve.playground_api import make_router

    threads = torch.get_num_threads()  # make_router sets one thread for the process
    router = make_router(limits or Limits(), runs_dir)
    app = FastAPI()
    app.include_router(router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws="none", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/", router
    finally:
        server.should_exit = True
        thread.join(10)
        torch.set_num_threads(threads)


def post(url: str, body: Any, *, raw: bool = False) -> tuple[int, dict[str, Any]]:
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "text/csv" if raw else "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Stream:
    """An open ``/api/play/stream``: its server-sent messages one by one."""

    def __init__(self, base: str, query: str = "") -> None:
        self.response = urllib.request.urlopen(base + "api/play/stream" + (f"?{query}" if query else ""),
                                                timeout=60)

    def next(self) -> dict[str, Any]:
        data = []
        while True:
            line = self.response.readline().decode()
            if not line:
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif not line and data:
                return json.loads("\n".join(data))

    def close(self) -> None:
        self.response.close()
