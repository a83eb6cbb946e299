"""The playground's controls chart: built from the setup and the limits, keyed by URL state."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from netxray.report.html import payload_json
from netxray.serve.controls import controls_chart
from netxray.serve.frames import playground_payload
from netxray.serve.playground import PlaygroundSession
from netxray.serve.playground_config import FEATURES, PRESETS, from_query, preset, to_query
from netxray.serve.settings import Limits

L = Limits()
ACTIONS = {"reset", "play", "step", "preset", "lecture", "save", "share", "upload"}


def by_key(spec):
    return {c["key"]: c for c in spec["controls"]}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_shows_its_values_under_the_url_keys(name):
    cfg = preset(name, L)
    ctl = by_key(controls_chart(cfg, L))
    query = dict(parse_qsl(to_query(cfg), keep_blank_values=True))
    # every URL key the page can set is a control, showing the config's value
    for key, text in query.items():
        if key in ("scale", "res"):          # not on the form (a preset or a link sets them)
            continue
        if key == "feat":
            on = [f for f in FEATURES if ctl[f"feat.{f}"]["value"]]
            assert ",".join(on) == ",".join(f for f in FEATURES if f in text.split(","))
        elif key == "disc":
            assert ctl["disc"]["value"] is (text == "1")
        elif key == "hidden":
            assert ctl["hidden"]["value"] == text
        else:
            assert str(ctl[key]["value"]) == text or float(ctl[key]["value"]) == float(text), key
    assert ACTIONS <= set(ctl)
    assert controls_chart(cfg, L)["description"] == PRESETS[name][0]


def test_values_off_the_menus_join_them_in_order_and_limits_bound_the_numbers():
    cfg = from_query("lr=0.07&ratio=0.65&rate=0.2", L)
    ctl = by_key(controls_chart(cfg, L, playing=True))
    lrs = [v for v, _ in ctl["lr"]["options"]]
    assert 0.07 in lrs and lrs == sorted(lrs) and ctl["lr"]["value"] == 0.07
    assert [0.65, "65% train"] in ctl["ratio"]["options"]
    assert ctl["rate"]["value"] == 0.2
    assert ctl["play"]["label"].endswith("pause") and ctl["play"]["primary"] is True
    small = Limits(max_samples=300, max_layers=2, max_units=5)
    ctl = by_key(controls_chart(from_query("n=200", small), small))
    assert ctl["n"]["max"] == 300 and ctl["batch"]["max"] == 300
    assert "2 layers of up to 5 units" in ctl["hidden"]["title"]
    assert controls_chart(cfg, L)["description"] == ""


def test_the_first_page_carries_the_controls_first():
    cfg = preset("lecture", L)
    frame = PlaygroundSession(cfg, L).frame()
    payload = json.loads(payload_json(playground_payload(frame, cfg, controls_chart(cfg, L))))
    first = payload["sections"][0]["charts"]
    assert first[0]["kind"] == "controls" and first[0]["id"] == "controls"
    assert [c["id"] for c in first[1:]] == ["network", "surface", "loss"]
    plain = playground_payload(frame, cfg)  # without: as before
    assert [c["id"] for c in plain["sections"][0]["charts"]] == ["network", "surface", "loss"]
