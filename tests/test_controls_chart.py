"""The ``controls`` chart's builder: what it accepts, and a clear error for everything else."""

from __future__ import annotations

import json

import pytest

from netxray.report import charts
from netxray.report.html import payload_json, validate_payload


def form(**over):
    sel = {"key": "act", "label": "activation", "type": "select", "value": "tanh",
           "options": [("relu", "ReLU"), ("tanh", "tanh")]}
    sel.update(over)
    return [sel, {"key": "lr", "label": "learning rate", "type": "number", "value": 0.03,
                  "min": 0, "max": 10, "step": 0.01},
            {"key": "hidden", "label": "hidden units", "type": "text", "value": "4,2"},
            {"key": "disc", "label": "discretize", "type": "checkbox", "value": False},
            {"key": "play", "label": "play", "type": "button", "primary": True},
            {"key": "csv", "label": "upload", "type": "file", "accept": ".csv"}]


def test_a_valid_form_is_plain_json_and_passes_the_page_check():
    spec = charts.controls("Setup", form(), description="d", id="setup")
    assert spec["kind"] == "controls" and spec["id"] == "setup" and spec["description"] == "d"
    assert [c["type"] for c in spec["controls"]] == list(charts.CONTROL_TYPES)
    assert spec["controls"][0]["options"] == [["relu", "ReLU"], ["tanh", "tanh"]]
    assert spec["controls"][4] == {"key": "play", "label": "play", "type": "button",
                                   "primary": True, "value": None}
    assert json.loads(json.dumps(spec, allow_nan=False)) == spec
    payload = {"title": "t", "sections": [{"id": "s", "title": "S", "charts": [spec]}]}
    validate_payload(payload)
    assert json.loads(payload_json(payload))["sections"][0]["charts"][0]["controls"][1]["value"] == 0.03
    assert "controls" in charts.KINDS


def test_numeric_options_match_numbers_not_strings():
    c = [{"key": "lr", "label": "lr", "type": "select", "value": 0.1, "options": [(0.1, "0.1"), (1, "1")]}]
    assert charts.controls("t", c)["controls"][0]["value"] == 0.1
    c[0]["value"] = "0.1"
    with pytest.raises(ValueError, match=r"value '0.1' is not among its options \(0.1, 1\)"):
        charts.controls("t", c)


@pytest.mark.parametrize("controls, message", [
    ([], "controls is empty"),
    ("abc", "controls must be a list"),
    ([{"key": "a", "label": "a", "type": "slider", "value": 1}], "unknown type 'slider'; types: select, number"),
    ([{"key": "1a", "label": "a", "type": "text", "value": ""}], "'key' must be a letter"),
    ([{"key": "a", "label": " ", "type": "text", "value": ""}], "'label' must be a non-empty string"),
    ([{"key": "a", "label": "a", "type": "text", "value": ""},
      {"key": "a", "label": "b", "type": "checkbox", "value": True}], "control key\\(s\\) 'a' used twice"),
    (form(value="gelu"), "value 'gelu' is not among its options"),
    (form(options=[]), "'options' must be a non-empty list"),
    (form(options=[("relu",)]), r"options\[0\] must be a \(value, label\) pair"),
    (form(options=[("relu", "a"), ("relu", "b")]), "option value 'relu' is listed twice"),
    (form(options=[(True, "yes")], value=True), "must be a finite number; got True"),
    (form(min=0), "a select control takes no min"),
    ([{"key": "n", "label": "n", "type": "number", "value": 5, "min": 10, "max": 1}], "min 10 is above max 1"),
    ([{"key": "n", "label": "n", "type": "number", "value": 50, "min": 0, "max": 10}], "value 50 is outside \\[0, 10\\]"),
    ([{"key": "n", "label": "n", "type": "number", "value": 1, "step": 0}], "step must be > 0"),
    ([{"key": "n", "label": "n", "type": "number", "value": float("nan")}], "'value' must be a finite number"),
    ([{"key": "n", "label": "n", "type": "number", "value": "3"}], "'value' must be a finite number"),
    ([{"key": "t", "label": "t", "type": "text", "value": 3}], "'value' must be a string"),
    ([{"key": "c", "label": "c", "type": "checkbox", "value": 1}], "a checkbox's value must be true or false"),
    ([{"key": "b", "label": "b", "type": "button", "value": 1}], "a button holds no value"),
    ([{"key": "b", "label": "b", "type": "button", "primary": "yes"}], "'primary' must be true or false"),
    ([{"key": "f", "label": "f", "type": "file", "value": "x.csv"}], "a file holds no value"),
    (["select"], "must be a dict with key, label, type and value"),
])
def test_bad_controls_are_refused_with_a_clear_message(controls, message):
    with pytest.raises(ValueError, match=message):
        charts.controls("t", controls)


def test_bad_id_and_title_are_refused():
    with pytest.raises(ValueError, match="id must be a letter"):
        charts.controls("t", form(), id="has space")
    with pytest.raises(ValueError, match="title must be a string"):
        charts.controls(3, form())


def test_a_slider_cannot_hold_controls():
    spec = charts.controls("t", form())
    with pytest.raises(ValueError, match="a slider cannot hold 'controls' frames"):
        charts.slider("s", [spec], ["one"])
    payload = {"title": "t", "sections": [{"id": "s", "title": "S", "charts": [
        {"kind": "slider", "title": "s", "frames": [spec], "frame_labels": ["one"]}]}]}
    with pytest.raises(ValueError, match="a slider cannot hold 'controls'"):
        validate_payload(payload)
    with pytest.raises(ValueError, match=r"lacks controls; build it with netxray.report.charts.controls\(\)"):
        validate_payload({"title": "t", "sections": [{"id": "s", "title": "S", "charts": [
            {"kind": "controls", "title": "c"}]}]})
