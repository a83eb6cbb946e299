"""How results show themselves: a short ``repr`` for the terminal, HTML for Jupyter.

Every :class:`netxray._results.Result` gets both from here. The HTML is self-contained (no
script, no outside request), escapes every string that came from a user (layer names,
class names), and is bounded in size: pictures are small PNGs drawn by the result's
Display, so a 50,000-point projection is drawn, never dumped.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

#: repr of one field is cut to this many characters
_FIELD_CHARS = 60
#: the HTML tables list at most this many rows (units, layers)
MAX_ROWS = 64
#: pictures are drawn at this size (inches) and resolution: a few tens of kB each
FIGSIZE = (5.0, 3.6)
DPI = 72

_STYLE = (
    "<style>.nx-r{font-family:system-ui,sans-serif;font-size:13px;max-width:900px}"
    ".nx-r table{border-collapse:collapse;margin:4px 0}"
    ".nx-r table td,.nx-r table th{padding:2px 8px;border-bottom:1px solid #ddd;"
    "text-align:left;vertical-align:top}.nx-r table th{background:#f4f4f4}"
    ".nx-sev{font-weight:600;border-radius:3px;padding:0 4px;color:#fff}"
    ".nx-error{background:#c62828}.nx-warning{background:#ef6c00}.nx-info{background:#1565c0}"
    ".nx-r table td.nx-num{font-variant-numeric:tabular-nums;text-align:right}.nx-r img{max-width:100%}</style>"
)


# ------------------------------------------------------------------------------ terminal


def _short(value: Any) -> str:
    """One field in a few words: arrays by dtype and shape, containers by size."""
    if isinstance(value, torch.Tensor):
        return f"tensor({str(value.dtype).removeprefix('torch.')}, {tuple(value.shape)})"
    if isinstance(value, np.ndarray):
        return f"array({value.dtype}, {value.shape})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return f"{type(value).__name__}(...)"
    if isinstance(value, Mapping):
        keys = [str(k) for k in list(value)[:4]]
        more = ", ..." if len(value) > 4 else ""
        return f"{{{', '.join(keys)}{more}}} ({len(value)})" if value else "{}"
    if isinstance(value, list | tuple):
        if len(value) > 6 or any(not isinstance(v, int | float | str | None) for v in value):
            return f"{type(value).__name__} of {len(value)}"
        items = [f"{v:.4g}" if isinstance(v, float) else repr(v) for v in value]
        text = ", ".join(items) + ("," if isinstance(value, tuple) and len(value) == 1 else "")
        return f"({text})" if isinstance(value, tuple) else f"[{text}]"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = repr(value)
    return text if len(text) <= _FIELD_CHARS else text[: _FIELD_CHARS - 3] + "..."


def short_repr(result: Any) -> str:
    """``Name(field=summary, ...)``: what the result holds, without dumping its arrays."""
    parts = [f"{f.name}={_short(getattr(result, f.name))}" for f in dataclasses.fields(result)]
    return f"{type(result).__name__}({', '.join(parts)})"


# ------------------------------------------------------------------------------ HTML pieces


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(v: Any, digits: int = 3) -> str:
    if v is None:
        return ""
    v = float(v)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.{digits}g}"


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """``rows`` hold HTML already escaped by the caller."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="nx-num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(r)
        ) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _more(n: int, shown: int, what: str) -> str:
    return f"<div>... and {n - shown} more {_e(what)}</div>" if n > shown else ""


def sparkline(counts: np.ndarray, width: int = 80, height: int = 16) -> str:
    """A histogram as a tiny inline SVG bar chart (no script)."""
    counts = np.asarray(counts, dtype=np.float64)
    top = counts.max() if counts.size and counts.max() > 0 else 1.0
    w = width / max(len(counts), 1)
    bars = "".join(
        f'<rect x="{i * w:.1f}" y="{height - height * c / top:.1f}" width="{max(w - 0.5, 0.5):.1f}"'
        f' height="{height * c / top:.1f}"/>'
        for i, c in enumerate(counts) if c > 0
    )
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="histogram">'
            f'<g fill="#5c6bc0">{bars}</g></svg>')


def png(draw: Callable[[Any], Any], grid: tuple[int, int] = (1, 1)) -> str:
    """``<img>`` of what ``draw(ax)`` puts on a small matplotlib figure with a ``grid`` of
    axes. A bare Figure, not pyplot: Jupyter's inline backend would show a pyplot figure a
    second time."""
    from matplotlib.figure import Figure

    rows, cols = grid
    scale = min(max(cols / 2, 1.0), 3.0), min(max(rows / 1.5, 1.0), 3.0)
    fig = Figure(figsize=(FIGSIZE[0] * scale[0], FIGSIZE[1] * scale[1]), dpi=DPI)
    ax = fig.add_subplot() if grid == (1, 1) else fig.subplots(rows, cols, squeeze=False)
    if grid[0] == 1 and grid != (1, 1):
        ax = ax[0]
    draw(ax)
    with warnings.catch_warnings():  # (a colour bar shared by several axes: laid out anyway)
        warnings.filterwarnings("ignore", "This figure includes Axes", UserWarning)
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}"/>'


def _frame(result: Any, body: str, headline: str = "") -> str:
    name = type(result).__name__
    line = f" <span>{headline}</span>" if headline else ""
    return f'{_STYLE}<div class="nx-r"><div><b>{_e(name)}</b>{line}</div>{body}</div>'


# ------------------------------------------------------------------------------ per class


def _fields_html(result: Any) -> str:
    rows = [[_e(f.name), _e(_short(getattr(result, f.name)))] for f in dataclasses.fields(result)]
    return _table(["field", "value"], rows)


def _health_html(r: Any) -> str:
    n_err = sum(f.severity == "error" for f in r.findings)
    n_warn = sum(f.severity == "warning" for f in r.findings)
    head = (f"{len(r.findings)} finding(s): {n_err} error(s), {n_warn} warning(s) on "
            f"{r.n_samples} samples" if r.findings else f"no problems found on {r.n_samples} samples")
    rows = []
    for f in r.findings[:MAX_ROWS]:
        units = ", ".join(map(str, f.units[:12])) + (" ..." if len(f.units) > 12 else "")
        rows.append([f'<span class="nx-sev nx-{_e(f.severity)}">{_e(f.severity)}</span>',
                     _e(f.kind), _e(f.layer or ""), _e(units), _e(f.advice)])
    body = _table(["severity", "kind", "layer", "units", "advice"], rows) if rows else ""
    body += _more(len(r.findings), len(rows), "findings")
    table = r.layer_table()
    if table:
        lrows = [[_e(t["layer"]), _e(t["type"]), str(t["units"]), _num(t["scale"]),
                  _num(t["frac_active"]), _num(t["frac_saturated"]),
                  "" if t["dead"] is None else str(t["dead"]), str(t["nonfinite"]),
                  _num(t["grad_rms"])] for t in table[:MAX_ROWS]]
        body += ("<details><summary>per-layer statistics</summary>"
                 + _table(["layer", "type", "units", "scale", "active", "saturated", "dead",
                           "NaN/Inf", "grad RMS"], lrows, numeric={2, 3, 4, 5, 6, 7, 8})
                 + _more(len(table), len(lrows), "layers") + "</details>")
    if r.skipped:
        body += "<div>skipped: " + _e("; ".join(r.skipped)) + "</div>"
    return _frame(r, body, _e(head))


def _layer_row(s: Any) -> list[str]:
    seen = s.count > 0
    active = float(s.frac_active[seen].mean()) if seen.any() else math.nan
    dead = int(((s.frac_active == 0) & seen).sum()) if s.family == "relu" else None
    return [_e(s.name), _e(s.module_type), str(s.units), _num(s.scale), _num(active),
            "" if dead is None else str(dead), str(s.n_nonfinite), _num(s.grad_rms),
            sparkline(s.hist.sum(axis=0)) if s.hist_edges.size else ""]


_LAYER_HEADER = ["layer", "type", "units", "scale", "active", "dead", "NaN/Inf", "grad RMS",
                 "histogram"]


def _network_stats_html(r: Any) -> str:
    layers = list(r.values())
    rows = [_layer_row(s) for s in layers[:MAX_ROWS]]
    head = f"{len(layers)} layers over {r.n_samples} samples" + (
        f", loss {_num(r.loss, 4)}" if r.loss is not None else "")
    body = _table(_LAYER_HEADER, rows, numeric={2, 3, 4, 5, 6, 7})
    return _frame(r, body + _more(len(layers), len(rows), "layers"), _e(head))


def _layer_stats_html(s: Any) -> str:
    body = _table(_LAYER_HEADER, [_layer_row(s)], numeric={2, 3, 4, 5, 6, 7})
    n = min(s.units, MAX_ROWS)
    rows = [[str(u), _num(s.mean[u]), _num(math.sqrt(max(float(s.var[u]), 0.0))),
             _num(s.frac_active[u]), _num(s.frac_saturated[u]) if s.saturation else "",
             sparkline(s.hist[u]) if s.hist_edges.size else ""] for u in range(n)]
    body += ("<details><summary>per-unit statistics</summary>"
             + _table(["unit", "mean", "std", "active", "saturated", "histogram"], rows,
                      numeric={0, 1, 2, 3, 4})
             + _more(s.units, n, "units") + "</details>")
    return _frame(s, body)


def _picture(
    display: Callable[[Any], Any],
    numbers: str = "",
    grid: Callable[[Any], tuple[int, int]] = lambda r: (1, 1),
) -> Callable[[Any], str]:
    """A renderer that draws the result with its Display (on ``grid(result)`` axes) and adds
    its key numbers."""

    def render(r: Any) -> str:
        try:
            img = png(lambda ax: display(r).plot(ax=ax), grid(r))
        except Exception as e:  # a picture that cannot be drawn still shows its fields
            img = f"<div>(no picture: {_e(e)})</div>"
        head = _e(key_numbers(numbers, r)) if numbers else ""
        return _frame(r, img + _fields_html(r), head)

    return render


def _token_heatmap(ax: Any, scores: np.ndarray) -> None:
    top = float(np.abs(scores).max()) or 1.0
    im = ax.imshow(scores, cmap="RdBu", vmin=-top, vmax=top, aspect="auto",
                   interpolation="nearest")
    ax.set_xlabel("token position")
    ax.set_ylabel("sequence")
    ax.figure.colorbar(im, ax=ax, label="attribution per token")


def _attribution_html(r: Any) -> str:
    """One row of token scores per sequence for attributions of tokens (see
    :attr:`Attribution.of_tokens`); heatmaps for images and other ``(batch, A, B, ...)``
    values; per-feature bars for flat inputs; numbers only for tuples of inputs."""
    if isinstance(r.values, tuple):
        shapes = ", ".join(str(tuple(v.shape)) for v in r.values)
        return _frame(r, _fields_html(r), _e(f"{r.method}, values for {len(r.values)} "
                                             f"inputs shaped {shapes}"))
    if r.of_tokens:
        scores = r.token_scores().detach().float().cpu().numpy()
        img = png(lambda ax: _token_heatmap(ax, scores[:MAX_ROWS]))
        return _frame(r, img + _fields_html(r), _e(key_numbers("attribution", r)))
    if r.values.ndim >= 3:  # images (channels summed), or any (batch, A, B) as A x B maps
        return _picture(_image_display(), "attribution",
                        grid=lambda r: (1, min(_IMAGE_PANELS, len(r))))(r)
    return _picture(_feature_display(), "attribution")(r)


#: a notebook shows the attributions of the first samples only, one panel each
_IMAGE_PANELS = 4


def _image_display() -> Callable[[Any], Any]:
    from netxray.plot.attribution import ImageAttributionDisplay

    return lambda r: ImageAttributionDisplay.from_result(
        r, indices=range(min(_IMAGE_PANELS, len(r))))


def _feature_display() -> Callable[[Any], Any]:
    from netxray.plot.attribution import FeatureAttributionDisplay

    return FeatureAttributionDisplay.from_result


def key_numbers(kind: str, r: Any) -> str:
    """The key numbers of a pictured result, in words."""
    if kind == "projection":
        parts = [f"{r.method} of {r.coords.shape[0]} points"]
        if r.explained_variance_ratio is not None:
            ev = ", ".join(f"{v:.0%}" for v in r.explained_variance_ratio[:3])
            parts.append(f"explained variance {ev}")
        if r.trustworthiness is not None:
            parts.append(f"trustworthiness {r.trustworthiness:.3f}")
        return "; ".join(parts)
    if kind == "attribution":
        text = f"{r.method}, values {tuple(r.values.shape)}"
        if r.delta is not None:
            text += f", max |completeness delta| {float(r.delta.abs().max()):.2g}"
        if r.of_tokens:
            text += "; token scores" + ("" if r.per_token else " (summed over the embedding)")
            text += ", padding at 0" if r.mask is not None else ""
        return text
    if kind == "probes":
        best = max(r.layers, key=lambda n: r.accuracy[n])
        return f"best layer {best}: accuracy {r.accuracy[best]:.3f} (chance {r.chance:.3f})"
    if kind == "boundary":
        return f"{r.probs.shape[-1]} classes on a {r.xx.shape[0]}x{r.xx.shape[1]} grid"
    if kind == "training":
        return f"{len(r.epochs)} epochs, final train loss {_num(r.train_loss[-1], 4)}"
    return ""


#: a notebook shows at most this many unit maps per layer (two rows of thumbnails)
MAX_UNIT_MAPS = 32
_MAP_COLS = 16


def _unit_maps_html(r: Any) -> str:
    """The first :data:`MAX_UNIT_MAPS` units of each layer, on the grid the display needs."""
    from netxray.plot.boundary import UnitMapsDisplay

    shown = {k: m[:MAX_UNIT_MAPS] for k, m in r.maps.items()}
    display = UnitMapsDisplay(shown, r.xx, r.yy, dead={k: d[:MAX_UNIT_MAPS] for k, d in r.dead.items()})
    rows = sum(-(-m.shape[0] // _MAP_COLS) for m in shown.values())
    cols = min(_MAP_COLS, max(m.shape[0] for m in shown.values()))
    try:
        img = png(lambda ax: display.plot(ax=ax, max_cols=_MAP_COLS), (rows, cols))
    except Exception as e:  # a picture that cannot be drawn still shows its fields
        img = f"<div>(no picture: {_e(e)})</div>"
    cut = [f"{k}: {m.shape[0]}" for k, m in r.maps.items() if m.shape[0] > MAX_UNIT_MAPS]
    note = (f"<div>Showing the first {MAX_UNIT_MAPS} units of each layer (units: "
            f"{_e(', '.join(cut))}); plot all with UnitMapsDisplay.from_result(r).plot().</div>"
            if cut else "")
    return _frame(r, img + note + _fields_html(r))


def _renderers() -> dict[str, Callable[[Any], str]]:
    from netxray.plot import attribution as pa
    from netxray.plot import boundary as pb
    from netxray.plot import probes as pp
    from netxray.plot import projection as pj
    from netxray.plot import training as pt

    return {
        "HealthReport": _health_html,
        "NetworkStats": _network_stats_html,
        "LayerStats": _layer_stats_html,
        "Projection": _picture(pj.ProjectionDisplay.from_result, "projection"),
        "Attribution": _attribution_html,
        "DatasetAttribution": _picture(pa.FeatureAttributionDisplay.from_result),
        "BoundaryGrid": _picture(pb.DecisionBoundaryDisplay.from_result, "boundary"),
        "UnitMaps": _unit_maps_html,
        "GridWarp": _picture(pb.GridWarpDisplay.from_result, grid=lambda r: (1, 1 + len(r.layers))),
        "ActivationMap": _picture(pp.ActivationMapDisplay.from_result),
        "ProbeResult": _picture(pp.ProbeDisplay.from_result, "probes"),
        "CKAMatrix": _picture(pp.CKADisplay.from_result),
        "TrainingHistory": _picture(pt.TrainingCurvesDisplay.from_result, "training",
                                    grid=lambda r: (1, 2)),
    }


def result_html(result: Any) -> str:
    """Jupyter's rich display of a result (``Result._repr_html_``)."""
    render = _renderers().get(type(result).__name__)
    if render is None:
        return _frame(result, _fields_html(result))
    return render(result)
