"""The playground's HTTP side: the page, a stream of frames, controls, uploads and saving.

:func:`make_router` returns a FastAPI ``APIRouter``; ``netxray serve``'s app includes it.
Frames go to the page as server-sent events (plain HTTP, so the ``[web]`` extra's uvicorn
serves them without a WebSocket library); the page sends its input back with small POSTs:

- ``GET /``: the playground page (the report's front-end with ``playground.js``, inline);
- ``GET /api/play/stream?<URL state>``: opens a session and streams ``hello`` (the session
  id, the canonical URL state and the first page), then ``frame`` messages (patches keyed
  by chart id) while playing, ``render`` after a change of setup, ``error`` for bad input.
  The session ends when the stream closes: a closed tab stops its training;
- ``POST /api/play/{session}/control``: ``{"action": "play" | "pause" | "step" | "reset" |
  "config" | "preset", "query": URL state, "preset": name, "fps": frames per second}``;
- ``POST /api/play/{session}/upload``: a 2-D CSV (``x1,x2,label``) as the request body;
- ``POST /api/play/save``: ``{"session": id}`` records the run in ``runs_dir``; the answer
  names the run and ``report_url``, ``GET /api/play/report/{run}``, its report to download.

Every input is bounded by :class:`~netxray.serve.settings.Limits` and answered with a
clear message on failure (HTTP 400, or 429 when too many playgrounds are open).
"""


import asyncio
import json
import math
import secrets
import time
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from netxray.data import Dataset
from netxray.serve.controls import controls_chart
from netxray.serve.frames import frame_message, playground_payload
from netxray.serve.playground import PlaygroundSession, parse_csv
from netxray.serve.playground_config import PlayConfig, from_query, preset, to_query
from netxray.serve.playground_save import RUN_NAME, save_run
from netxray.serve.settings import Limits

__all__ = ["make_router", "playground_page"]

DEFAULT_FPS = 20.0
_KEEPALIVE_S = 15.0


@dataclass(eq=False)
class _Live:
    """One open playground: its session and what its page asked for."""

    sid: str
    session: PlaygroundSession
    fps: float
    playing: bool = False
    pending: int = 0  # single steps asked for
    redraw: bool = False  # a frame without training (a change of drawing only)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    uploaded: Dataset | None = None
    frames: int = 0

    def poke(self) -> None:
        self.wake.set()


@cache
def _asset(name: str) -> str:
    text = resources.files("netxray.report").joinpath("web", name).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise RuntimeError(f"web/{name} cannot be inlined")
    return text


def playground_page() -> str:
    """The playground's page: the report's front-end, no data yet, and ``playground.js``,
    which opens the stream with the URL's state; the controls come with the first page (a
    ``controls`` chart, :mod:`netxray.serve.controls`)."""
    from netxray.report.html import render_html

    page = render_html({"title": "netxray playground", "subtitle": "connecting\u2026",
                        "sections": []})
    script = (f"<style>\n{_asset('playground.css')}\n</style>\n"
              f"<script>\n{_asset('playground.js')}\n</script>\n</body>")
    page = page.replace('<div id="nx-root"', '<div id="nx-pg" class="nx-pg"></div>\n'
                        '<div id="nx-root"', 1)
    return page.replace("</body>", script, 1)


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _json(msg: dict[str, Any]) -> str:
    return json.dumps(msg, allow_nan=False, separators=(",", ":"))


def _event(msg: dict[str, Any]) -> str:
    return f"data: {_json(msg)}\n\n"


def _next_frame(session: PlaygroundSession, train: bool) -> str:
    """The next frame as an event: after one epoch of training, or as it is."""
    return _event(frame_message(session.step() if train else session.frame(), session.config))


def make_router(limits: Limits, runs_dir: Path) -> Any:
    """The playground's routes (see the module docstring) as a FastAPI ``APIRouter``."""
    from fastapi import APIRouter, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

    router = APIRouter()
    live: dict[str, _Live] = {}
    opening = [0]  # sessions being built
    runs_dir = Path(runs_dir)
    router.live_sessions = live  # type: ignore[attr-defined]  # for tests and the app

    def bad(message: str, status: int = 400) -> HTTPException:
        return HTTPException(status_code=status, detail=message)

    def get_live(sid: str) -> _Live:
        if sid not in live:
            raise bad(f"no open playground {sid!r}: its page was closed or the server "
                      "restarted; reload the page", 404)
        return live[sid]

    def hello(sid: str, lv: _Live, kind: str) -> dict[str, Any]:
        frame = lv.session.frame()
        cfg = lv.session.config
        from netxray.report.html import payload_json

        return {"type": kind, "session": sid, "query": to_query(cfg),
                "config": {"label": cfg.label, "preset": cfg.preset},
                "payload": json.loads(payload_json(playground_payload(
                    frame, cfg, controls_chart(cfg, limits, playing=lv.playing)))),
                "epoch": frame.epoch, "train_loss": _finite(frame.train_loss),
                "test_loss": _finite(frame.test_loss), "playing": lv.playing}

    @router.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(playground_page())

    @router.get("/api/play/stream")
    async def stream(request: Request) -> StreamingResponse:
        if len(live) + opening[0] >= limits.max_sessions:
            raise bad(f"{len(live)} playgrounds are open, the most this server allows "
                      f"({limits.max_sessions}); close one and reload", 429)
        opening[0] += 1  # counted while its session is built, so no two requests overshoot
        try:
            config = from_query(request.url.query, limits)
            session = await asyncio.to_thread(PlaygroundSession, config, limits)
        except ValueError as exc:
            raise bad(str(exc)) from None
        finally:
            opening[0] -= 1
        sid = secrets.token_urlsafe(12)
        fps = min(DEFAULT_FPS, limits.max_fps)
        lv = live[sid] = _Live(sid=sid, session=session, fps=fps)

        async def events() -> Any:
            try:
                async with lv.lock:
                    first = await asyncio.to_thread(hello, sid, lv, "hello")
                yield _event(first)
                while True:
                    while lv.outbox:
                        yield _event(lv.outbox.pop(0))
                    if lv.playing or lv.pending or lv.redraw:
                        start = time.perf_counter()
                        train = lv.playing or lv.pending > 0
                        lv.redraw = False
                        async with lv.lock:
                            sess = lv.session
                            text = await asyncio.to_thread(_next_frame, sess, train)
                        lv.pending = max(0, lv.pending - 1)
                        lv.frames += 1
                        yield text
                        rest = 1.0 / lv.fps - (time.perf_counter() - start)
                        await asyncio.sleep(max(rest, 0.0))
                        continue
                    lv.wake.clear()
                    try:
                        await asyncio.wait_for(lv.wake.wait(), _KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                live.pop(sid, None)  # a closed tab stops its training

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def _read_json(request: Request, most: int = 10_000) -> dict[str, Any]:
        body = await request.body()
        if len(body) > most:
            raise bad(f"the request is {len(body)} bytes; at most {most} are read")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise bad("the request body must be JSON") from None
        if not isinstance(data, dict):
            raise bad("the request body must be a JSON object")
        return data

    async def _restart(lv: _Live, config: PlayConfig) -> None:
        async with lv.lock:
            lv.session = await asyncio.to_thread(PlaygroundSession, config, limits, lv.uploaded)
            lv.outbox.append(await asyncio.to_thread(hello, lv.sid, lv, "render"))

    @router.post("/api/play/{sid}/control")
    async def control(sid: str, request: Request) -> JSONResponse:
        lv = get_live(sid)
        data = await _read_json(request)
        action = data.get("action")
        if "fps" in data:
            fps = data["fps"]
            if not isinstance(fps, int | float) or isinstance(fps, bool) or not 0 < fps <= limits.max_fps:
                raise bad(f"fps must be a number in (0, {limits.max_fps:g}]; got {fps!r}")
            lv.fps = float(fps)
        try:
            if action == "play":
                lv.playing = True
            elif action == "pause":
                lv.playing = False
            elif action == "step":
                lv.playing = False
                lv.pending = min(lv.pending + 1, 100)
            elif action == "reset":
                lv.playing = False
                await _restart(lv, lv.session.config)
            elif action == "config":
                query = data.get("query")
                if not isinstance(query, str):
                    raise bad("action 'config' needs 'query': the URL state as a string")
                new = from_query(query, limits)
                old = lv.session.config
                if replace(new, discretize=old.discretize) == old:  # drawing only: no restart
                    lv.session.config = new
                    lv.redraw = True
                else:
                    await _restart(lv, new)
            elif action == "preset":
                lv.playing = False
                await _restart(lv, preset(str(data.get("preset")), limits))
            elif action is not None or "fps" not in data:
                raise bad(f"unknown action {action!r}; actions: play, pause, step, reset, "
                          "config, preset")
        except ValueError as exc:
            raise bad(str(exc)) from None
        lv.poke()
        return JSONResponse({"ok": True, "playing": lv.playing,
                             "query": to_query(lv.session.config)})

    @router.post("/api/play/{sid}/upload")
    async def upload(sid: str, request: Request) -> JSONResponse:
        lv = get_live(sid)
        size = int(request.headers.get("content-length") or 0)
        if size > limits.max_upload_bytes:
            raise bad(f"the CSV is {size} bytes; at most {limits.max_upload_bytes} are allowed", 413)
        body = await request.body()
        if len(body) > limits.max_upload_bytes:
            raise bad(f"the CSV is larger than {limits.max_upload_bytes} bytes", 413)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise bad("the CSV must be UTF-8 text") from None
        try:
            ds = parse_csv(text, limits, name=request.headers.get("x-filename", "upload")[:80])
            cfg = lv.session.config
            config = replace(cfg, dataset="csv", classes=ds.n_classes, preset="",
                             n_samples=len(ds)).validate(limits)
        except ValueError as exc:
            raise bad(f"the CSV was not loaded: {exc}") from None
        lv.uploaded = ds
        lv.playing = False
        await _restart(lv, config)
        lv.poke()
        return JSONResponse({"ok": True, "rows": len(ds), "classes": list(ds.class_names),
                             "query": to_query(config)})

    @router.post("/api/play/save")
    async def save(request: Request) -> JSONResponse:
        data = await _read_json(request)
        lv = get_live(str(data.get("session")))
        async with lv.lock:
            cfg, epochs = lv.session.config, lv.session.epoch
        try:
            saved = await asyncio.to_thread(save_run, cfg, epochs, runs_dir, limits, lv.uploaded)
        except ValueError as exc:
            raise bad(str(exc)) from None
        return JSONResponse({"ok": True, "run": saved.name, "epochs": saved.epochs,
                             "path": str(saved.path),
                             "report_url": f"api/play/report/{saved.name}"})

    @router.get("/api/play/report/{run}")
    def report(run: str) -> Response:
        if not RUN_NAME.fullmatch(run):
            raise bad(f"{run!r} is not a saved playground run", 404)
        path = runs_dir / run / "report.html"
        inside = path.resolve().is_relative_to(runs_dir.resolve())  # no symlink out
        if not inside or not path.is_file():
            raise bad(f"no report for {run!r} in the runs folder", 404)
        return Response(path.read_bytes(), media_type="text/html; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{run}.html"'})

    return router
