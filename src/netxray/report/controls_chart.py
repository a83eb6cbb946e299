"""The ``controls`` chart: a form whose input goes back to the page's script.

The other kinds show results; this one takes input, so one front-end serves the report, the
live playground and the viewer. Each control is a plain dict (a select, a number, a text
field, a checkbox, a button or a file picker) checked strictly here. The page draws it with
``web/charts-controls.js`` and hands every change to the listeners registered with
``window.netxray.onInput(function (chartId, key, value) {...})``; a static report has none,
so there a change does nothing. See docs/report.md ("controls").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from netxray.report.chart_spec import _base, _text

__all__ = ["CONTROL_TYPES", "controls"]

#: The kinds of control a ``controls`` chart can hold.
CONTROL_TYPES = ("select", "number", "text", "checkbox", "button", "file")

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.:^-]{0,63}$")
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
#: keys each type may carry beyond key, label, type, value, title and group
_EXTRA = {"select": {"options"}, "number": {"min", "max", "step"}, "text": {"placeholder"},
          "checkbox": set(), "button": {"primary"}, "file": {"accept"}}
_COMMON = {"key", "label", "type", "value", "title", "group"}


def _finite(value: Any, name: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return value


def _option_value(value: Any, name: str) -> str | int | float:
    if isinstance(value, str):
        return value
    return _finite(value, name)


def _options(raw: Any, where: str) -> list[list[Any]]:
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence) or not raw:
        raise ValueError(f"{where}: 'options' must be a non-empty list of (value, label) pairs")
    out: list[list[Any]] = []
    for i, opt in enumerate(raw):
        if isinstance(opt, str | bytes) or not isinstance(opt, Sequence) or len(opt) != 2:
            raise ValueError(f"{where}: options[{i}] must be a (value, label) pair; got {opt!r}")
        value = _option_value(opt[0], f"{where}: options[{i}]'s value")
        label = _text(opt[1], f"{where}: options[{i}]'s label")
        if _among(value, out):
            raise ValueError(f"{where}: option value {value!r} is listed twice")
        out.append([value, label])
    return out


def _among(value: Any, options: list[list[Any]]) -> bool:
    """``value`` is one of the options' values (a string never equals a number)."""
    return any(isinstance(v, str) == isinstance(value, str) and v == value for v, _ in options)


def _control(raw: Any, i: int) -> dict[str, Any]:
    where = f"controls[{i}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a dict with key, label, type and value; "
                         f"got {type(raw).__name__}")
    kind = raw.get("type")
    if kind not in CONTROL_TYPES:
        raise ValueError(f"{where} has unknown type {kind!r}; types: {', '.join(CONTROL_TYPES)}")
    key = raw.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"{where} ({kind}): 'key' must be a letter, then up to 63 letters, "
                         f"digits or '_.:^-'; got {key!r}")
    where = f"{where} ({key!r})"
    unknown = set(raw) - _COMMON - _EXTRA[kind]
    if unknown:
        allowed = sorted(_COMMON | _EXTRA[kind])
        raise ValueError(f"{where}: a {kind} control takes no {', '.join(sorted(unknown))}; "
                         f"its keys: {', '.join(allowed)}")
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"{where}: 'label' must be a non-empty string (the control's name "
                         f"on the page and for screen readers); got {label!r}")
    out: dict[str, Any] = {"key": key, "label": label, "type": kind}
    for opt in ("title", "group"):
        if opt in raw:
            out[opt] = _text(raw[opt], f"{where}: {opt!r}")
    value = raw.get("value")
    if kind == "select":
        if "options" not in raw:
            raise ValueError(f"{where}: a select needs 'options', a list of (value, label)")
        out["options"] = _options(raw["options"], where)
        value = _option_value(value, f"{where}: 'value'")
        if not _among(value, out["options"]):
            raise ValueError(f"{where}: value {value!r} is not among its options "
                             f"({', '.join(repr(v) for v, _ in out['options'])})")
    elif kind == "number":
        value = _finite(value, f"{where}: 'value'")
        for b in ("min", "max", "step"):
            if raw.get(b) is not None:
                out[b] = _finite(raw[b], f"{where}: {b!r}")
        if "min" in out and "max" in out and out["min"] > out["max"]:
            raise ValueError(f"{where}: min {out['min']!r} is above max {out['max']!r}")
        if "step" in out and out["step"] <= 0:
            raise ValueError(f"{where}: step must be > 0; got {out['step']!r}")
        if not out.get("min", value) <= value <= out.get("max", value):
            raise ValueError(f"{where}: value {value!r} is outside "
                             f"[{out.get('min', '-inf')}, {out.get('max', 'inf')}]")
    elif kind == "text":
        value = _text(value, f"{where}: 'value'")
        if "placeholder" in raw:
            out["placeholder"] = _text(raw["placeholder"], f"{where}: 'placeholder'")
    elif kind == "checkbox":
        if not isinstance(value, bool):
            raise ValueError(f"{where}: a checkbox's value must be true or false; got {value!r}")
    else:  # button, file: nothing to hold
        if value is not None:
            raise ValueError(f"{where}: a {kind} holds no value (it sends "
                             f"{'true' if kind == 'button' else 'the chosen File'}); "
                             f"got {value!r}")
        if kind == "button" and "primary" in raw:
            if not isinstance(raw["primary"], bool):
                raise ValueError(f"{where}: 'primary' must be true or false")
            out["primary"] = raw["primary"]
        if kind == "file" and "accept" in raw:
            out["accept"] = _text(raw["accept"], f"{where}: 'accept'")
    out["value"] = value
    return out


def controls(
    title: str,
    controls: Sequence[Mapping[str, Any]],
    *,
    description: str = "",
    id: str | None = None,  # noqa: A002 - the chart's id, as window.netxray.patch names it
) -> dict[str, Any]:
    """A form: ``controls`` drawn in order, each sending its input to ``window.netxray.onInput``.

    Each control is ``{"key", "label", "type", "value"}`` plus, by type: ``select``
    ``options`` ``[(value, label), ...]`` (values strings or numbers; ``value`` one of them);
    ``number`` optional ``min``, ``max``, ``step``; ``text`` optional ``placeholder``;
    ``checkbox`` a bool ``value``; ``button`` no value (sends ``true``), optional
    ``primary``; ``file`` no value (sends the ``File``), optional ``accept``. Any control may
    carry a ``title`` (its tooltip) and a ``group``: a run of controls of one group shares a
    row, named by the group (a new group starts a new row). ``key`` must be unique: it is what the listener receives. ``id`` names the
    chart for ``window.netxray.patch`` and is the listener's ``chartId``.
    """
    spec = _base("controls", title, description)
    if isinstance(controls, str | bytes | Mapping) or not isinstance(controls, Sequence):
        raise ValueError("controls must be a list of control dicts")
    if not controls:
        raise ValueError("controls is empty; a controls chart needs at least one control")
    out = [_control(c, i) for i, c in enumerate(controls)]
    keys = [c["key"] for c in out]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"control key(s) {', '.join(map(repr, dupes))} used twice; each "
                         "control needs its own key (the listener tells them apart by it)")
    spec["controls"] = out
    if id is not None:
        if not isinstance(id, str) or not _ID.match(id):
            raise ValueError(f"id must be a letter, then up to 63 letters, digits, '-' or '_'; "
                             f"got {id!r}")
        spec["id"] = id
    return spec
