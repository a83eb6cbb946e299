"""The ``netxray serve`` application: the playground, the run viewer, security headers.

:func:`create_app` builds one FastAPI app. The playground (``/``, ``/api/play/...``; see
:mod:`netxray.serve.playground_api`) trains a small network live. The run viewer
(``/runs/``, ``/api/runs``) draws each run of the folder as its ``netxray report`` page; a
run still being written is served in live mode (the page polls ``/api/runs/NAME/payload``
and redraws; it stops once the run is closed).

Safety: every response carries a Content-Security-Policy as strict as the report's (no
network but this server), ``nosniff``, no framing, no referrer; there is no CORS, no docs or
OpenAPI route, and requests whose ``Host`` is not the one served are refused (DNS
rebinding). Run names go through :func:`netxray.serve.runs.resolve_run` only.
"""

from __future__ import annotations

import html
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.trustedhost import TrustedHostMiddleware

from netxray.serve.playground_api import make_router
from netxray.serve.runs import RunNotFound, list_runs, resolve_run, signature
from netxray.serve.settings import Limits

__all__ = ["LOCAL_HOSTS", "SECURITY_HEADERS", "create_app"]

#: ``Host`` names a server bound to the loopback interface answers to
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

#: on every response; the CSP is the report page's own (inline CSS/JS, data: images,
#: fetches to this server only) plus no framing, no <base>, no form posts
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; img-src data: blob:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

#: the limits of a plain ``netxray serve`` (a frozen value, safe to share)
DEFAULT_LIMITS = Limits()

#: seconds between two polls of a page following a run being written
POLL_S = 1.0


class _Payloads:
    """The last few runs' payload JSON, rebuilt only when the store changed on disk."""

    def __init__(self, size: int = 8) -> None:
        self._cache: OrderedDict[Path, tuple[Any, str, bool]] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, file: Path) -> tuple[str, bool]:
        """``(payload JSON, closed)`` of the run stored in ``file``."""
        sig = signature(file)
        with self._lock:
            hit = self._cache.get(file)
            if hit is not None and hit[0] == sig:
                self._cache.move_to_end(file)
                return hit[1], hit[2]
        text, closed = _build_payload(file)
        with self._lock:
            self._cache[file] = (sig, text, closed)
            self._cache.move_to_end(file)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return text, closed


def _build_payload(file: Path) -> tuple[str, bool]:
    from netxray.report.html import payload_json
    from netxray.report.training import run_payload
    from netxray.run_analysis import read_run

    tr = read_run(file)
    closed = tr.status == "closed"
    payload = run_payload(tr)
    payload["done"] = closed  # the live page stops polling once it sees this
    return payload_json(payload), closed


def _run_file(runs_dir: Path, name: str) -> Path:
    try:
        return resolve_run(runs_dir, name)
    except RunNotFound as e:
        raise HTTPException(status_code=404, detail=str(e)) from None


def _read(payloads: _Payloads, file: Path) -> tuple[str, bool]:
    from netxray.store import RunFormatError

    try:
        return payloads.get(file)
    except (RunFormatError, FileNotFoundError) as e:
        raise HTTPException(status_code=422, detail=f"the run cannot be read: {e}") from None


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _listing_html(runs_dir: Path, entries: list[Any], limit: int) -> str:
    rows = "".join(
        f'<tr data-run="{html.escape(e.name)}" data-status="{e.status}">'
        f'<td><a href="/runs/{quote(e.name, safe="")}/">{html.escape(e.name)}</a></td>'
        f'<td class="st-{e.status}">{e.status}</td><td class="n">{e.steps}</td>'
        f"<td>{_when(e.created)}</td><td>{_when(e.updated)}</td>"
        f"<td>{html.escape(e.error or '')}</td></tr>"
        for e in entries
    )
    more = (f"<p>Showing the newest {limit} runs (Limits.max_runs).</p>"
            if len(entries) >= limit else "")
    empty = ("" if entries else "<p>No runs here yet. Record one with <code>netxray train</code>"
             " or <code>netxray.watch(model, 'runs/NAME')</code>; this page refreshes.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>netxray runs</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       color: #1f2430; padding: 0 1rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e3e6ee; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.st-running {{ color: #1a7f37; font-weight: 600; }} .st-unreadable {{ color: #b42318; }}
</style></head><body>
<h1>netxray runs</h1>
<p>Runs in <code>{html.escape(str(runs_dir))}</code>, newest first. A running run's page
follows it as it is written.</p>
{empty}{more}
<table id="runs"><thead><tr><th>run</th><th>status</th><th>steps</th><th>created</th>
<th>last update</th><th></th></tr></thead><tbody>{rows}</tbody></table>
</body></html>"""


def _add_viewer(app: FastAPI, runs_dir: Path, limits: Limits) -> None:
    payloads = _Payloads()

    @app.get("/runs", include_in_schema=False)
    def runs_slash() -> RedirectResponse:
        return RedirectResponse("/runs/", status_code=308)

    @app.get("/runs/", response_class=HTMLResponse)
    def runs_page() -> HTMLResponse:
        entries = list_runs(runs_dir, limits.max_runs)
        return HTMLResponse(_listing_html(runs_dir, entries, limits.max_runs))

    @app.get("/api/runs")
    def runs_api() -> JSONResponse:
        entries = list_runs(runs_dir, limits.max_runs)
        return JSONResponse({"runs": [e.to_json() for e in entries], "limit": limits.max_runs})

    @app.get("/runs/{name}", include_in_schema=False)
    def run_slash(name: str) -> RedirectResponse:
        _run_file(runs_dir, name)
        return RedirectResponse(f"/runs/{quote(name, safe='')}/", status_code=308)

    @app.get("/runs/{name}/", response_class=HTMLResponse)
    def run_page(name: str) -> HTMLResponse:
        from netxray.report.html import render_page

        file = _run_file(runs_dir, name)
        text, closed = _read(payloads, file)
        live = None if closed else f"/api/runs/{quote(name, safe='')}/payload"
        return HTMLResponse(render_page(text, live_url=live, poll_s=POLL_S))

    @app.get("/api/runs/{name}/payload")
    def run_payload_api(name: str) -> Response:
        file = _run_file(runs_dir, name)
        text, _ = _read(payloads, file)
        return Response(text, media_type="application/json",
                        headers={"Cache-Control": "no-store"})


def create_app(runs_dir: Path, limits: Limits = DEFAULT_LIMITS, *,
               allowed_hosts: Sequence[str] = LOCAL_HOSTS) -> FastAPI:
    """The ``netxray serve`` app over the runs folder ``runs_dir`` (the viewer only reads its
    runs; the playground's "save this run" adds new ones).

    ``allowed_hosts``: the ``Host`` headers answered (default: loopback names only; ``"*"``
    for any, as ``netxray serve --host`` does for a non-loopback address).
    """
    runs_dir = Path(runs_dir)
    app = FastAPI(title="netxray serve", docs_url=None, redoc_url=None, openapi_url=None,
                  redirect_slashes=False)  # the viewer's own redirects are explicit
    app.state.runs_dir = runs_dir
    app.state.limits = limits

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    # added last, so it wraps the Host check: a refused request gets the headers too
    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    _add_viewer(app, runs_dir, limits)
    app.include_router(make_router(limits, runs_dir))  # the playground, at /
    return app
