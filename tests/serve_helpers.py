"""A playground served by uvicorn in a thread on 127.0.0.1, for the API and browser tests."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netxray.serve.settings import Limits
from serve_thread import serving


@contextlib.contextmanager
def serve_playground(runs_dir: Path, limits: Limits | None = None) -> Iterator[tuple[str, Any]]:
    """``(base URL, router)``: a FastAPI app with the playground router, served until exit."""
    from fastapi import FastAPI

    from netxray.serve.playground_api import make_router

    router = make_router(limits or Limits(), runs_dir)
    app = FastAPI()
    app.include_router(router)
    with serving(app) as base:
        yield base + "/", router


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
