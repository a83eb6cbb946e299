"""The playground's controls as a ``controls`` chart, built from its setup and the limits.

Every control's key is the URL state's key (``data``, ``n``, ``act``, ``lr``, ...; a feature
checkbox is ``feat.<feature>``), so the page turns an input into the new URL state by
setting one key; the buttons (``play``, ``step``, ``reset``, ``lecture``, ``save``,
``share``), the ``preset`` menu and the ``upload`` file picker are actions. The page
(``web/playground.js``) listens with ``window.netxray.onInput`` and sends them to the
server; the chart is drawn by the report's own renderer (``web/charts-controls.js``).
"""

from __future__ import annotations

from typing import Any

from netxray.report.controls_chart import controls
from netxray.serve.playground_config import (
    ACTIVATIONS,
    DATASETS,
    FEATURES,
    INITS,
    MAX_CLASSES,
    MAX_SEED,
    OPTIMIZERS,
    PRESETS,
    REGULARIZATIONS,
    PlayConfig,
)
from netxray.serve.settings import Limits

__all__ = ["CHART_ID", "controls_chart"]

#: the controls chart's id (``window.netxray.patch`` and ``onInput``'s ``chartId``)
CHART_ID = "controls"
PLAY, PAUSE = "\u25b6 play", "\u275a\u275a pause"

_DATA_NAMES = {"gauss": "gaussians", "csv": "uploaded CSV"}
_ACT_NAMES = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "gelu": "GELU"}
_OPT_NAMES = {"sgd": "SGD", "adam": "Adam"}
_REG_NAMES = {"l1": "L1", "l2": "L2"}
_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_LRS = (1e-5, 1e-4, 1e-3, 0.003, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 1, 1.5, 3, 10)
_RATES = (0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10)
_FEATURE_LABELS = {"x1": "x\u2081", "x2": "x\u2082", "x1^2": "x\u2081\u00b2",
                   "x2^2": "x\u2082\u00b2", "x1x2": "x\u2081x\u2082", "sin_x1": "sin x\u2081",
                   "sin_x2": "sin x\u2082"}


def _named(values: tuple[str, ...], names: dict[str, str]) -> list[tuple[str, str]]:
    return [(v, names.get(v, v)) for v in values]


def _numbers(values: tuple[float, ...], current: float, label: Any = "{:g}".format
             ) -> list[tuple[float, str]]:
    """The menu's numbers, with ``current`` put in order when it is not one of them (a setup
    from a preset or a link may hold any value in range)."""
    chosen = sorted({*values, current}) if current not in values else list(values)
    return [(v, label(v)) for v in chosen]


def _select(key: str, label: str, value: Any, options: list, group: str) -> dict[str, Any]:
    return {"key": key, "label": label, "type": "select", "value": value, "options": options,
            "group": group}


def _number(key: str, label: str, value: float, lo: float, hi: float, step: float
            ) -> dict[str, Any]:
    return {"key": key, "label": label, "type": "number", "value": value, "min": lo,
            "max": hi, "step": step, "group": "data"}


def _button(key: str, label: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "label": label, "type": "button", "title": title, "group": "run", **extra}


def controls_chart(config: PlayConfig, limits: Limits, *, playing: bool = False) -> dict[str, Any]:
    """The playground's controls for ``config`` (a ``controls`` chart with id ``"controls"``);
    ``playing`` names the play button "pause". Its description is the preset's, if any."""
    c = config
    presets = [("", "\u2014 choose \u2014"), *((k, k.replace("_", " ")) for k in PRESETS)]
    items: list[dict[str, Any]] = [
        _button("reset", "\u21ba reset", "start over with new weights"),
        _button("play", PAUSE if playing else PLAY, "train continuously, or pause", primary=True),
        _button("step", "step", "train one epoch"),
        _select("preset", "preset", c.preset, presets, "run"),
        _button("lecture", "the lecture's setup", PRESETS["lecture"][0]),
        _button("save", "save this run", "record it in the run store and download its report"),
        _button("share", "copy link", "the address holds this setup"),
        _select("data", "data set", c.dataset, _named(DATASETS, _DATA_NAMES), "data"),
        _select("classes", "classes", c.classes,
                [(k, str(k)) for k in range(2, MAX_CLASSES + 1)], "data"),
        _number("n", "samples", c.n_samples, 20, limits.max_samples, 10),
        _number("noise", "noise", c.noise, 0, 2, 0.05),
        _select("ratio", "train/test", c.train_ratio,
                _numbers(_RATIOS, c.train_ratio, lambda r: f"{r:.0%} train"), "data"),
        _number("batch", "batch (0 = all)", c.batch_size, 0, limits.max_samples, 1),
        _number("seed", "seed", c.seed, 0, MAX_SEED, 1),
        {"key": "upload", "label": "upload 2-D CSV (x1,x2,label)", "type": "file",
         "accept": ".csv,text/csv", "group": "data"},
        *({"key": f"feat.{f}", "label": _FEATURE_LABELS[f], "type": "checkbox",
           "value": f in c.features, "group": "features"} for f in FEATURES),
        {"key": "hidden", "label": "hidden units per layer", "type": "text",
         "value": ",".join(str(h) for h in c.hidden), "group": "network",
         "title": f"e.g. 4,2: up to {limits.max_layers} layers of up to {limits.max_units} units"},
        _select("act", "activation", c.activation, _named(tuple(ACTIVATIONS), _ACT_NAMES),
                "network"),
        _select("init", "init", c.init, _named(INITS, {}), "network"),
        _select("opt", "optimizer", c.optimizer, _named(OPTIMIZERS, _OPT_NAMES), "network"),
        _select("lr", "learning rate", c.lr, _numbers(_LRS, c.lr), "network"),
        _select("reg", "regularization", c.regularization,
                _named(REGULARIZATIONS, _REG_NAMES), "network"),
        _select("rate", "reg. rate", c.reg_rate, _numbers(_RATES, c.reg_rate), "network"),
        {"key": "disc", "label": "discretize output", "type": "checkbox",
         "value": c.discretize, "group": "network"},
    ]
    description = PRESETS[c.preset][0] if c.preset in PRESETS else ""
    return controls("Setup", items, description=description, id=CHART_ID)
