"""The playground's routes, served by uvicorn on 127.0.0.1: stream, controls, upload, save."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from netxray.serve.playground_config import preset, to_query  # noqa: E402
from netxray.serve.settings import Limits  # noqa: E402
from serve_helpers import Stream, post, serve_playground  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    with serve_playground(runs, Limits(max_sessions=2)) as (base, router):
        yield base, router, runs


def _wait(cond, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_page_is_self_contained(served):
    base, _, _ = served
    with urllib.request.urlopen(base, timeout=30) as r:
        html = r.read().decode()
    assert 'id="nx-pg"' in html and "window.netxray" in html and "api/play/stream" in html
    assert "http://" not in html.split("<script", 1)[1].replace("http://www.w3.org", "")


def test_stream_trains_while_playing_and_a_closed_stream_ends_its_session(served):
    base, router, _ = served
    s = Stream(base)
    hello = s.next()
    assert hello["type"] == "hello" and hello["epoch"] == 0
    sid = hello["session"]
    assert sid in router.live_sessions
    assert post(base + f"api/play/{sid}/control", {"action": "play"})[0] == 200
    frames = [s.next() for _ in range(3)]
    assert [f["epoch"] for f in frames] == [1, 2, 3]
    assert {"network", "surface", "loss", "findings"} <= set(frames[-1]["patches"])
    assert post(base + f"api/play/{sid}/control", {"action": "pause"})[0] == 200
    s.close()  # the tab closes
    _wait(lambda: sid not in router.live_sessions)
    assert post(base + f"api/play/{sid}/control", {"action": "play"})[0] == 404


def test_step_config_and_bad_input(served):
    base, _, _ = served
    s = Stream(base, "hidden=3&act=relu")
    hello = s.next()
    assert "hidden=3&" in hello["query"] and "act=relu" in hello["query"]
    sid = hello["session"]
    url = base + f"api/play/{sid}/control"
    assert post(url, {"action": "step"})[0] == 200
    assert s.next()["epoch"] == 1
    code, body = post(url, {"action": "config", "query": "hidden=99"})
    assert code == 400 and "1..16" in body["detail"]
    code, body = post(url, {"action": "fly"})
    assert code == 400 and "unknown action" in body["detail"]
    code, body = post(url, {"action": "play", "fps": 1000})
    assert code == 400 and "fps" in body["detail"]
    query = to_query(preset("dying_relu", Limits()))
    assert post(url, {"action": "config", "query": query})[0] == 200
    rendered = s.next()
    assert rendered["type"] == "render" and rendered["query"] == query
    s.close()


def test_bad_url_state_and_too_many_sessions_are_refused(served):
    base, router, _ = served
    with pytest.raises(urllib.error.HTTPError) as err:
        Stream(base, "hidden=1,2,3,4,5,6,7")
    assert err.value.code == 400 and "at most 6" in err.value.read().decode()
    a, b = Stream(base), Stream(base)
    a.next(), b.next()
    with pytest.raises(urllib.error.HTTPError) as err:
        Stream(base)
    assert err.value.code == 429 and "close one" in err.value.read().decode()
    a.close(), b.close()
    _wait(lambda: not router.live_sessions)


def test_csv_upload(served):
    base, _, _ = served
    s = Stream(base)
    sid = s.next()["session"]
    rows = "\n".join(f"{i % 7},{i % 5},{'red' if i % 3 else 'blue'}" for i in range(60))
    code, body = post(base + f"api/play/{sid}/upload", ("x,y,c\n" + rows).encode(), raw=True)
    assert code == 200 and body["classes"] == ["blue", "red"] and "data=csv" in body["query"]
    assert s.next()["type"] == "render"
    code, body = post(base + f"api/play/{sid}/upload", b"x,y,c\n1,zz,0\n" + rows.encode(),
                      raw=True)
    assert code == 400 and "row 2, column 'y': 'zz' is not a number" in body["detail"]
    s.close()


def test_save_this_run_writes_a_run_store_and_its_report(served):
    from netxray.store import open_run

    base, _, runs = served
    s = Stream(base, "hidden=4&n=200")
    sid = s.next()["session"]
    code, body = post(base + "api/play/save", {"session": sid})
    assert code == 400 and "train at least one epoch" in body["detail"]
    url = base + f"api/play/{sid}/control"
    for _ in range(3):
        post(url, {"action": "step"})
        s.next()
    code, body = post(base + "api/play/save", {"session": sid})
    assert code == 200 and body["epochs"] == 3, body
    folder = runs / body["run"]
    with open_run(folder) as run:
        assert run.config["url_state"].startswith("data=circle&n=200")
        assert len(run.steps.step) == 3 * 10  # 100 training points in batches of 10
    with urllib.request.urlopen(base + body["report_url"], timeout=30) as r:
        assert "attachment" in r.headers["Content-Disposition"]
        assert b"netxray-data" in r.read()
    outside = runs.parent / "elsewhere"  # a run-like folder name that links out of the runs
    outside.mkdir()
    (outside / "report.html").write_text("secret")
    (runs / "playground-20260101-000000").symlink_to(outside, target_is_directory=True)
    (runs / "playground-20260101-000001\n").mkdir()  # the name pattern must match whole
    (runs / "playground-20260101-000001\n" / "report.html").write_text("odd")
    for bad in ("..%2Fetc", "playground-20260101-000000", "playground-20260101-000001%0A"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "api/play/report/" + bad, timeout=30)
        assert err.value.code == 404, bad
    s.close()
