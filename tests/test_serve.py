"""`netxray serve`: the run viewer's routes, its headers, and every way out of the runs folder.

The listing and payloads are checked against the store read with sqlite3 directly; the
traversal tests try each trick on every route that takes a run name, and check both the
status and that nothing from outside leaked into the answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest
import torch

import netxray
from netxray import cli
from netxray.serve import Limits
from netxray.serve.runs import RunNotFound, list_runs, resolve_run, valid_name
from watch_helpers import train_steps

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from netxray.serve.app import SECURITY_HEADERS, create_app  # noqa: E402

SECRET = "TOP-SECRET-OUTSIDE"


def _train(path: Path, steps: int, *, close: bool = True):
    X = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).long()
    model = netxray.mlp([2, 6, 2], seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = netxray.watch(model, path, every=1, alarms=lambda f, s: None, config={"dataset": "toy"}).__enter__()
    train_steps(model, X, y, opt, w, steps)
    w.flush()
    if close:
        w.close()
    return w


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """runs/ with a closed folder run, a closed .sqlite run, a running run, a non-run file,
    and outside it a run and a secret file that symlinks inside runs/ point at."""
    base = tmp_path_factory.mktemp("serve")
    runs, outside = base / "runs", base / "outside"
    runs.mkdir()
    outside.mkdir()
    _train(runs / "alpha", 5)
    _train(runs / "beta.sqlite", 3)
    live = _train(runs / "gamma", 4, close=False)
    _train(outside / "stolen", 2)
    (outside / "secret.txt").write_text(SECRET)
    (runs / "notes.txt").write_text("not a run")
    (runs / "empty").mkdir()
    os.symlink(outside / "stolen", runs / "linked-out")  # a folder run outside: refused
    os.symlink(outside / "stolen" / "run.sqlite", runs / "file-out.sqlite")
    os.symlink(runs / "alpha", runs / "alias")  # stays inside: allowed
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest()
              for p in (runs / "alpha" / "run.sqlite", runs / "beta.sqlite")}
    yield runs, outside, before
    live.close()


@pytest.fixture(scope="module")
def client(world):
    runs, _, _ = world
    with TestClient(create_app(runs, Limits()), base_url="http://127.0.0.1") as c:
        yield c


def _steps(file: Path) -> int:
    with sqlite3.connect(f"file:{file}?mode=ro&immutable=1", uri=True) as con:  # no side files
        return con.execute("SELECT COUNT(*) FROM steps").fetchone()[0]


# ------------------------------------------------------------------ listing


def test_listing_names_every_run_with_its_status_and_steps(client, world):
    runs, _, _ = world
    got = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(got) == {"alpha", "beta.sqlite", "gamma", "alias"}  # not notes/empty/outside links
    assert got["alpha"]["status"] == "closed" and got["alpha"]["steps"] == _steps(runs / "alpha" / "run.sqlite") == 5
    assert got["beta.sqlite"]["steps"] == 3 and got["beta.sqlite"]["status"] == "closed"
    assert got["gamma"]["status"] == "running" and got["gamma"]["steps"] == 4
    for r in got.values():
        assert r["created"] <= r["updated"]


def test_listing_is_newest_first_and_bounded(world):
    runs, _, _ = world
    os.utime(runs / "beta.sqlite", (2e9, 2e9))  # the newest change
    names = [e.name for e in list_runs(runs, 10)]
    assert names[0] == "beta.sqlite"
    assert [e.name for e in list_runs(runs, 2)] == names[:2]
    with TestClient(create_app(runs, Limits(max_runs=1)), base_url="http://127.0.0.1") as c:
        assert [r["name"] for r in c.get("/api/runs").json()["runs"]] == ["beta.sqlite"]
        assert "newest 1 runs" in c.get("/runs/").text


def test_listing_page_links_each_run(client):
    r = client.get("/runs/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for name in ("alpha", "beta.sqlite", "gamma"):
        assert f'href="/runs/{name}/"' in r.text
    assert 'data-status="running"' in r.text


def test_a_missing_runs_folder_lists_nothing(tmp_path):
    with TestClient(create_app(tmp_path / "nope"), base_url="http://127.0.0.1") as c:
        assert c.get("/api/runs").json()["runs"] == []
        assert "No runs here yet" in c.get("/runs/").text
    assert not (tmp_path / "nope").exists()


def test_an_unreadable_store_is_listed_as_such(tmp_path):
    (tmp_path / "junk.sqlite").write_bytes(b"not sqlite at all" * 10)
    with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as c:
        (row,) = c.get("/api/runs").json()["runs"]
        assert row["status"] == "unreadable" and row["error"]
        assert c.get("/api/runs/junk.sqlite/payload").status_code == 422


# ------------------------------------------------------------------ a run


def test_run_page_is_its_report_and_a_closed_run_is_not_polled(client):
    r = client.get("/runs/alpha/")
    assert r.status_code == 200
    assert 'id="netxray-data"' in r.text and "data-live-url=" not in r.text
    assert "netxray run: toy" in r.text


def test_a_running_run_page_polls_its_payload(client):
    r = client.get("/runs/gamma/")
    assert 'data-live-url="/api/runs/gamma/payload"' in r.text


def test_payload_is_the_report_of_the_store(client, world):
    runs, _, _ = world
    p = client.get("/api/runs/alpha/payload")
    assert p.headers["content-type"] == "application/json"
    assert p.headers["cache-control"] == "no-store"
    data = p.json()
    assert data["done"] is True and data["meta"]["steps"] == 5 and data["meta"]["status"] == "closed"
    assert data["sections"][0]["id"] == "watch"
    assert client.get("/api/runs/gamma/payload").json()["done"] is False


def test_payload_follows_a_run_as_it_is_written(tmp_path):
    w = _train(tmp_path / "run", 2, close=False)
    with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as c:
        assert c.get("/api/runs/run/payload").json()["meta"]["steps"] == 2
        w.step(loss=1.0)
        w.step(loss=0.5)
        w.flush()
        assert c.get("/api/runs/run/payload").json()["meta"]["steps"] == 4
        w.close()
        data = c.get("/api/runs/run/payload").json()
        assert data["done"] is True and data["meta"]["status"] == "closed"


def test_redirects(client):
    root = client.get("/", follow_redirects=False)  # the playground lives at the root
    assert root.status_code == 200 and "<title>netxray playground</title>" in root.text
    assert client.get("/runs", follow_redirects=False).headers["location"] == "/runs/"
    assert client.get("/runs/alpha", follow_redirects=False).headers["location"] == "/runs/alpha/"
    assert client.get("/runs/nope", follow_redirects=False).status_code == 404


def test_serving_never_writes_in_a_run(client, world):
    runs, _, before = world
    for name in ("alpha", "beta.sqlite"):
        client.get(f"/runs/{name}/")
        client.get(f"/api/runs/{name}/payload")
    client.get("/api/runs")
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before}
    assert after == before
    assert sorted(os.listdir(runs / "alpha")) == ["run.sqlite"]  # no -wal/-shm, no report
    assert not [f for f in os.listdir(runs) if f.startswith("beta.sqlite-")]


# ------------------------------------------------------------------ headers


@pytest.mark.parametrize("url", ["/runs/", "/api/runs", "/runs/alpha/", "/api/runs/alpha/payload",
                                 "/runs/nope/"])
def test_every_response_carries_the_security_headers(client, url):
    r = client.get(url)
    for k, v in SECURITY_HEADERS.items():
        assert r.headers[k] == v
    assert "access-control-allow-origin" not in r.headers


def test_no_cors_no_docs_and_no_other_host(client):
    r = client.get("/api/runs", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    assert client.options("/api/runs", headers={"Origin": "http://evil.example",
                                                "Access-Control-Request-Method": "GET"}
                          ).status_code == 405
    for url in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert client.get(url).status_code == 404
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host
    refused = client.get("/api/runs", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and "alpha" not in refused.text
    assert refused.headers["X-Frame-Options"] == "DENY"
    assert client.get("/api/runs", headers={"Host": "localhost:8000"}).status_code == 200


# ------------------------------------------------------------------ traversal

TRICKS = [
    "..", ".", "%2e%2e", "%2E%2E", "..%2f..%2foutside%2fstolen", "%2e%2e%2foutside",
    "..%5c..%5coutside", "a%00b", "alpha%00", "%2fetc%2fpasswd", "%2F", "%5c", ".hidden",
    "linked-out", "file-out.sqlite", "notes.txt", "empty", "outside", "C:%5cWindows",
    "alpha%2f..%2f..%2foutside%2fstolen", "%252e%252e", "..%252f",
]


@pytest.mark.parametrize("name", TRICKS)
@pytest.mark.parametrize("route", ["/runs/{}/", "/api/runs/{}/payload", "/runs/{}"])
def test_no_name_reaches_outside_the_runs_folder(client, route, name):
    r = client.get(route.format(name), follow_redirects=False)
    # the client itself folds a literal ".." or "." away: /runs/.. is / (the playground page)
    folded = (r.is_redirect and r.headers["location"] == "/runs/"
              or r.request.url.path in ("/", "/runs/"))
    assert r.status_code in (400, 404, 405) or folded, (r.status_code, r.text[:200])
    assert SECRET not in r.text and "stolen" not in r.text.replace(name, "")


def test_absolute_and_raw_paths_are_refused(client, world):
    _, outside, _ = world
    for raw in (str(outside / "stolen"), "/../outside/stolen", "/runs/../../outside/stolen/"):
        r = client.get("/runs/" + raw.lstrip("/") + "/", follow_redirects=False)
        assert r.status_code == 404
        assert SECRET not in r.text


def test_a_symlink_inside_the_folder_is_allowed(client):
    assert client.get("/api/runs/alias/payload").json()["meta"]["steps"] == 5


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "a\\b", "a\0b", "/etc", ".x", "C:x",
                                  "x" * 256, "a\nb", 3, None])
def test_resolve_run_refuses_non_names(world, name):
    runs, _, _ = world
    assert not valid_name(name)
    with pytest.raises(RunNotFound):
        resolve_run(runs, name)


def test_resolve_run_refuses_symlinks_out_and_non_runs(world):
    runs, _, _ = world
    for name in ("linked-out", "file-out.sqlite", "notes.txt", "empty", "nope"):
        with pytest.raises(RunNotFound):
            resolve_run(runs, name)
    assert resolve_run(runs, "alias") == (runs / "alpha" / "run.sqlite").resolve()


# ------------------------------------------------------------------ the command


def test_serve_help_and_missing_folder(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        cli.main(["serve", "--help"])
    assert e.value.code == 0
    assert "--no-open" in capsys.readouterr().out
    assert cli.main(["serve", str(tmp_path / "missing"), "--no-open"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "f").write_text("x")
    assert cli.main(["serve", str(tmp_path / "f"), "--no-open"]) == 2


def test_serve_without_the_web_extra_says_what_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    assert cli.main(["serve", str(tmp_path), "--no-open"]) == 2
    assert "pip install 'netxray[web]'" in capsys.readouterr().err


def test_serve_refuses_a_port_in_use(capsys, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert cli.main(["serve", str(tmp_path), "--port", str(port), "--no-open"]) == 2
    assert "--port" in capsys.readouterr().err


def test_serve_runs_until_interrupted_and_opens_the_browser(monkeypatch, capsys, tmp_path):
    import webbrowser

    import uvicorn

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url))

    def fake_run(self, sockets=None):
        self.started = True
        assert sockets[0].getsockname()[0] == "127.0.0.1"
        import time

        for _ in range(100):  # the browser thread sees started
            if opened:
                break
            time.sleep(0.02)
        raise KeyboardInterrupt

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    assert cli.main(["serve", str(tmp_path), "--port", "0"]) == 0
    out = capsys.readouterr().out
    assert opened and opened[0].startswith("http://127.0.0.1:") and opened[0].endswith("/runs/")
    assert opened[0] in out
    json.dumps(out)  # printable


# ------------------------------------------------------------------ raw requests to uvicorn

RAW = [
    "/runs/../outside/secret.txt", "/runs/%2e%2e/outside/secret.txt",
    "/runs/..%2f..%2foutside%2fsecret.txt/", "/api/runs/..%2foutside%2fstolen/payload",
    "/api/runs/%2e%2e/payload", "/runs/..%5coutside%5cstolen/", "/runs/alpha%00/",
    "/api/runs/linked-out/payload", "/api/runs/file-out.sqlite/payload",
    "/runs/%2Foutside%2Fstolen/", "/../../outside/secret.txt", "/runs/./../outside/stolen/",
]


def test_raw_traversal_requests_to_the_real_server(world):
    from serve_thread import raw_get, serving

    runs, _, _ = world
    with serving(create_app(runs)) as base:
        assert raw_get(base, "/api/runs/alpha/payload")[0] == 200
        for target in RAW:
            status, body = raw_get(base, target)
            assert status in (400, 404), (target, status)
            assert SECRET.encode() not in body and b'"steps":2' not in body, target
        assert raw_get(base, "/api/runs", host="evil.example")[0] == 400


def test_the_serve_docs_run_and_print_what_they_say(tmp_path):
    import ast
    import re
    import subprocess

    doc = Path(__file__).resolve().parents[1] / "docs" / "serve.md"
    code = "\n".join(re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().split("\n")
    assert len(lines) == 8, proc.stdout
    epoch, _acc, dead = lines[0].split(" ", 2)  # the playground's blocks, then the viewer's
    assert epoch == "30" and sum(ast.literal_eval(dead).values()) > 0  # dying ReLU: units died
    assert "dead_units" in lines[1] and lines[2] == "circle: x1,x2 -> 8-8 relu"
    assert ast.literal_eval(lines[3]) == {"data": "moons", "act": "relu", "lr": 1.5}
    assert lines[4].startswith("A 16-16 ReLU MLP")  # the controls chart: dying_relu's text
    assert lines[5:] == ["exp1 closed 3", "3 True", "404"], proc.stdout


def test_the_real_server_answers_and_ctrl_c_exits_0(world):
    import signal
    import subprocess
    import urllib.request

    runs, _, _ = world
    proc = subprocess.Popen([sys.executable, "-m", "netxray.cli", "serve", str(runs),
                             "--port", "0", "--no-open"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/runs/"), line
        with urllib.request.urlopen(url.replace("/runs/", "/api/runs"), timeout=30) as r:
            names = {row["name"] for row in json.load(r)["runs"]}
        assert {"alpha", "beta.sqlite"} <= names
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
