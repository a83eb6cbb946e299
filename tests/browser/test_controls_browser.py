"""The controls kind in a plain report page: its form, window.netxray.onInput, and patches."""

from __future__ import annotations

import pytest

from netxray.report import charts
from netxray.report.html import write_report

from ._page import Page

pytestmark = pytest.mark.browser


def setup_form(act: str = "tanh", n: float = 500, hidden: str = "4,2") -> dict:
    return charts.controls("Setup", [
        {"key": "act", "label": "activation", "type": "select", "value": act,
         "options": [("relu", "ReLU"), ("tanh", "tanh"), ("gelu", "GELU")]},
        {"key": "lr", "label": "learning rate", "type": "select", "value": 0.03,
         "options": [(0.01, "0.01"), (0.03, "0.03"), (0.1, "0.1")]},
        {"key": "n", "label": "samples", "type": "number", "value": n, "min": 20, "max": 2000},
        {"key": "hidden", "label": "hidden units", "type": "text", "value": hidden},
        {"key": "feat.x1", "label": "x1", "type": "checkbox", "value": True, "group": "features"},
        {"key": "feat.x2", "label": "x2", "type": "checkbox", "value": False, "group": "features"},
        {"key": "play", "label": "play", "type": "button", "primary": True},
        {"key": "csv", "label": "upload a CSV", "type": "file", "accept": ".csv"},
    ], description="the setup", id="setup")


@pytest.fixture
def page(browser, tmp_path):
    path = write_report({"title": "r", "sections": [{"id": "a", "title": "A", "charts": [
        setup_form(), charts.bars("other", ["x"], [1.0])]}]}, tmp_path / "r.html")
    p = Page(browser, path)
    yield p
    assert not p.console_errors and not p.page_errors and not p.blocked
    p.close()


LISTEN = """() => { window.got = [];
  window.netxray.onInput((id, key, value) => window.got.push([id, key,
    value instanceof File ? 'File:' + value.name : value])); }"""


def test_the_form_draws_with_labels_and_accessible_names(page):
    pg = page.page
    card = pg.query_selector("figure[data-chart-id=setup]")
    assert card.get_attribute("data-rendered") == "1", card.get_attribute("data-error")
    assert pg.get_by_label("activation").input_value() == "tanh"
    assert pg.get_by_label("samples").input_value() == "500"
    assert pg.get_by_label("hidden units").input_value() == "4,2"
    assert pg.get_by_label("x1").is_checked() and not pg.get_by_label("x2").is_checked()
    assert pg.get_by_role("button", name="play").get_attribute("data-key") == "play"
    assert pg.query_selector("input[type=file][data-key=csv]").get_attribute("accept") == ".csv"
    assert pg.text_content("[data-group=features] .nx-ctl-group") == "features"
    keys = pg.eval_on_selector_all("figure[data-chart-id=setup] [data-key]",
                                   "els => els.map(e => e.getAttribute('data-key'))")
    assert keys == ["act", "lr", "n", "hidden", "feat.x1", "feat.x2", "play", "csv"]


def test_on_input_receives_chart_id_key_and_value(page, tmp_path):
    pg = page.page
    pg.evaluate(LISTEN)
    pg.select_option("select[data-key=act]", "gelu")
    pg.select_option("select[data-key=lr]", "0.1")
    pg.fill("input[data-key=n]", "300")
    pg.press("input[data-key=n]", "Enter")
    pg.fill("input[data-key=hidden]", "8,8")
    pg.press("input[data-key=hidden]", "Enter")
    pg.check("input[data-key='feat.x2']")
    pg.click("button[data-key=play]")
    csv = tmp_path / "pts.csv"
    csv.write_text("x1,x2,label\n0,0,1\n")
    pg.set_input_files("input[data-key=csv]", str(csv))
    assert pg.evaluate("() => window.got") == [
        ["setup", "act", "gelu"], ["setup", "lr", 0.1], ["setup", "n", 300],
        ["setup", "hidden", "8,8"], ["setup", "feat.x2", True], ["setup", "play", True],
        ["setup", "csv", "File:pts.csv"]]
    # a listener can be removed; then nothing more arrives
    pg.evaluate("() => { window.off = window.netxray.onInput(() => { throw new Error('x'); }); window.off(); }")
    pg.click("button[data-key=play]")
    assert len(pg.evaluate("() => window.got")) == 8


def test_without_a_listener_a_change_does_nothing_harmful(page):
    pg = page.page
    pg.select_option("select[data-key=act]", "relu")
    pg.click("button[data-key=play]")
    pg.uncheck("input[data-key='feat.x1']")
    assert pg.input_value("select[data-key=act]") == "relu"
    assert pg.get_attribute("figure[data-chart-id=setup]", "data-rendered") == "1"


def test_a_patch_keeps_the_users_values_unless_the_spec_changed(page):
    pg = page.page
    card = pg.query_selector("figure[data-chart-id=setup]")
    pg.select_option("select[data-key=act]", "gelu")
    pg.fill("input[data-key=n]", "300")
    pg.press("input[data-key=n]", "Enter")
    pg.uncheck("input[data-key='feat.x1']")
    assert pg.evaluate("(s) => window.netxray.patch('setup', s)", setup_form()) is True
    assert pg.evaluate("([a, b]) => a === b", [card, pg.query_selector("figure[data-chart-id=setup]")])
    assert pg.input_value("select[data-key=act]") == "gelu"      # the same spec: kept
    assert pg.input_value("input[data-key=n]") == "300"
    assert not pg.is_checked("input[data-key='feat.x1']")
    # the spec's value changed: the new one wins; the others stay as the user set them
    assert pg.evaluate("(s) => window.netxray.patch('setup', s)", setup_form(act="relu")) is True
    assert pg.input_value("select[data-key=act]") == "relu"
    assert pg.input_value("input[data-key=n]") == "300"
    assert pg.input_value("input[data-key=hidden]") == "4,2"
