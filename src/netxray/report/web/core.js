/* netxray front-end, part 1 of 4: palette, colour maps, DOM and canvas helpers, axes,
 * tooltips, and the decoder of packed arrays (netxray/report/packing.py).
 *
 * The report writer (netxray/report/html.py) concatenates the modules of its JS_MODULES
 * (core.js first, page.js last), in order, inside one function scope with "use strict":
 * the files share their top-level names and nothing leaks to the page but window.netxray
 * and window.netxrayRender. Its only dependencies are the vendored d3 modules (web/vendor/,
 * the scope's `d3`); no network: the page works from file:// (the
 * HTML report) and, fed over HTTP, as the live dashboard. Every string from the payload goes
 * into the page through textContent, never as HTML.
 */

// ------------------------------------------------------------------ palette & colour maps
var CLASS_COLORS = ["#f59322", "#0877bd", "#4aa564", "#e15759", "#9d6fbf", "#3bb0b0",
                    "#e5c430", "#9c755f", "#f28fb1", "#7f7f7f"];
var SERIES_COLORS = ["#0877bd", "#f59322", "#4aa564", "#e15759", "#9d6fbf", "#3bb0b0",
                     "#9c755f", "#e5c430", "#f28fb1", "#7f7f7f"];
var NEG = [245, 147, 34];   // orange: negative (as in TensorFlow Playground)
var POS = [8, 119, 189];    // blue: positive
var MID = [250, 250, 250];
var MISSING = [214, 217, 222];
var FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
var INK = "#1f2328", MUTED = "#6b7280", GRID = "#eceef1", AXIS = "#c4c9d0";
var SEVERITY_ORDER = ["critical", "error", "warning", "info", "ok"];

function hexRgb(h) {
  var n = parseInt(h.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
function rgbStr(c, a) {
  return a === undefined ? "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"
                         : "rgba(" + c[0] + "," + c[1] + "," + c[2] + "," + a + ")";
}
function classColor(i) {
  if (i < CLASS_COLORS.length) return CLASS_COLORS[i];
  return "hsl(" + Math.round((i * 137.508) % 360) + ",55%,52%)";
}
// a categorical colouring's colour; "correct"/"wrong" get grey/red so mistakes stand out
var SEMANTIC = { correct: "#a3adb8", wrong: "#e0342b" };
function catColor(coloring, i) {
  var name = coloring.categories[i];
  var semantic = coloring.categories.every(function (c) { return SEMANTIC[c]; });
  return semantic ? SEMANTIC[name] : classColor(i);
}
function seriesColor(i) {
  return i < SERIES_COLORS.length ? SERIES_COLORS[i] : classColor(i);
}
function classRgb(i) {
  if (i < CLASS_COLORS.length) return hexRgb(CLASS_COLORS[i]);
  var h = ((i * 137.508) % 360) / 360, s = 0.55, l = 0.52;   // hsl -> rgb
  var q = l + s - l * s, p = 2 * l - q;
  function f(t) {
    t = (t + 1) % 1;
    if (t < 1 / 6) return p + (q - p) * 6 * t;
    if (t < 1 / 2) return q;
    if (t < 2 / 3) return p + (q - p) * (2 / 3 - t) * 6;
    return p;
  }
  return [f(h + 1 / 3), f(h), f(h - 1 / 3)].map(function (v) { return Math.round(v * 255); });
}
// Colour maps, from d3: [r, g, b] lookup tables built once, since heatmaps ask per cell.
// Entries are shared and frozen: callers copy them (e.g. .map(Math.round)), never change them.
function rgbTable(interp, n) {   // interp's colours at t = 0, 1/(n-1), ..., 1
  var out = [];
  for (var i = 0; i < n; i++) {
    var c = d3.rgb(interp(i / (n - 1)));
    out.push(Object.freeze([c.r, c.g, c.b]));
  }
  return out;
}
// viridis is d3-scale-chromatic's: matplotlib's 256 colours, so the report and the Python
// (matplotlib) pictures agree. Diverging (orange-white-blue, as in TensorFlow Playground) and
// gray (ink on paper: low white, high near-black) are the project's, mixed linearly in RGB;
// 1024 steps keep them within one level of the exact mix, with their ends (and MID) exact.
var VIRIDIS = rgbTable(d3.interpolateViridis, 256);
var DIVERGING = rgbTable(d3.piecewise(d3.interpolateRgb, [rgbStr(NEG), rgbStr(MID), rgbStr(POS)]),
                         1025);
var GRAY = rgbTable(d3.interpolateRgb("rgb(255,255,255)", "rgb(20,24,30)"), 1025);
function isMissing(t) { return t === null || t !== t; }   // null or NaN
// t in [-1, 1] -> orange, white, blue
function diverging(t) {
  if (isMissing(t)) return MISSING;
  return DIVERGING[Math.round((Math.max(-1, Math.min(1, t)) + 1) * 512)];
}
// t in [0, 1]: the colour of bin floor(256 t), the one matplotlib's and d3's viridis pick
function viridis(t) {
  if (isMissing(t)) return MISSING;
  return VIRIDIS[Math.min(255, Math.floor(Math.max(0, Math.min(1, t)) * 256))];
}
function gray(t) {
  if (isMissing(t)) return MISSING;
  return GRAY[Math.round(Math.max(0, Math.min(1, t)) * 1024)];
}
// a colour scale over [lo, hi] for a cmap name
function colorScale(cmap, lo, hi) {
  if (cmap === "diverging") {
    var m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return { lo: -m, hi: m, cmap: cmap, f: function (v) { return v === null ? MISSING : diverging(v / m); } };
  }
  var span = hi - lo || 1;
  var g = cmap === "gray" ? gray : viridis;
  return { lo: lo, hi: hi, cmap: cmap, f: function (v) { return v === null ? MISSING : g((v - lo) / span); } };
}

// ------------------------------------------------------------------ small utilities
function el(tag, attrs, children) {
  var e = document.createElement(tag);
  if (attrs) {
    for (var k in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, k) || attrs[k] === null || attrs[k] === undefined) continue;
      if (k === "text") e.textContent = attrs[k];
      else if (k === "class") e.className = attrs[k];
      else if (k === "style") e.style.cssText = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
  }
  (children || []).forEach(function (c) {
    if (c === null || c === undefined) return;
    e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  });
  return e;
}
function fmt(v) {
  if (v === null || v === undefined) return "\u2014";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v !== "number") return String(v);
  if (!isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
  var a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2).replace("e+", "e");
  return String(parseFloat(v.toPrecision(4)));
}
function tickFmt(v, step) {
  if (v === 0) return "0";
  var a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace("e+", "e").replace(".0e", "e");
  var d = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(d, 6));
}
function finiteRange(arrs) {
  var lo = Infinity, hi = -Infinity;
  arrs.forEach(function (a) {
    for (var i = 0; i < a.length; i++) {
      var v = a[i];
      if (v !== null && isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    }
  });
  return lo <= hi ? [lo, hi] : null;
}
function flat2(m) {
  var out = [];
  m.forEach(function (r) { for (var i = 0; i < r.length; i++) out.push(r[i]); });
  return out;
}
function pad(range, frac) {
  if (!range) return [0, 1];
  var lo = range[0], hi = range[1];
  if (lo === hi) { var d = Math.abs(lo) * 0.1 || 1; return [lo - d, hi + d]; }
  var p = (hi - lo) * frac;
  return [lo - p, hi + p];
}
// the step between ticks over a span (1, 2 or 5 times a power of ten), from d3-array
function niceStep(span, count) { return Math.abs(d3.tickStep(0, span, Math.max(1, count))) || 1; }
// tick positions (1, 2 or 5 times a power of ten) from d3-array, in [lo, hi]
function niceTicks(lo, hi, count) {
  count = Math.max(1, count);
  return { ticks: d3.ticks(lo, hi, count), step: Math.abs(d3.tickStep(lo, hi, count)) || 1 };
}
function logTicks(lo, hi) {   // lo, hi are log10 values; returns log10 tick positions
  var sets = [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]], out = [];
  for (var s = 0; s < sets.length; s++) {
    out = [];
    var every = s === 0 ? Math.max(1, Math.ceil((hi - lo) / 6)) : 1;
    for (var e = Math.floor(lo) - 1; e <= Math.ceil(hi); e += every) {
      sets[s].forEach(function (m) {
        var v = Math.log10(m) + e;
        if (v >= lo - 1e-9 && v <= hi + 1e-9) out.push(v);
      });
    }
    if (out.length >= 3) break;
  }
  if (out.length < 3) {   // less than a factor of ~2 in range: plain ticks, placed on the log axis
    var a = Math.pow(10, lo), b = Math.pow(10, hi), nt = niceTicks(a, b, 4);
    out = nt.ticks.filter(function (v) { return v > 0; }).map(Math.log10);
  }
  return out;
}
function linear(d0, d1, r0, r1) {
  var k = (r1 - r0) / ((d1 - d0) || 1);
  var f = function (v) { return r0 + (v - d0) * k; };
  f.invert = function (p) { return d0 + (p - r0) / k; };
  return f;
}
function dpr() { return window.devicePixelRatio || 1; }
function makeCanvas(w, h, cls) {
  var c = el("canvas", { class: cls || "nx-canvas" });
  sizeCanvas(c, w, h);
  return c;
}
function sizeCanvas(c, w, h) {
  var r = dpr();
  c.width = Math.max(1, Math.round(w * r));
  c.height = Math.max(1, Math.round(h * r));
  c.style.width = w + "px";
  c.style.height = h + "px";
  var ctx = c.getContext("2d");
  ctx.setTransform(r, 0, 0, r, 0, 0);
  ctx.font = "12px " + FONT;
  ctx.textBaseline = "middle";
  return ctx;
}
function setFont(ctx, size, weight) {
  ctx.font = (weight ? weight + " " : "") + size + "px " + FONT;
}
function textWidth(ctx, texts, size) {
  setFont(ctx, size || 11);
  var w = 0;
  texts.forEach(function (t) { w = Math.max(w, ctx.measureText(t).width); });
  return w;
}
function ellipsize(ctx, s, max) {
  if (ctx.measureText(s).width <= max) return s;
  while (s.length > 1 && ctx.measureText(s + "\u2026").width > max) s = s.slice(0, -1);
  return s + "\u2026";
}
// An offscreen canvas holding a (rows x cols) image, one pixel per cell.
function cellImage(rows, cols, colorAt) {
  var c = document.createElement("canvas");
  c.width = cols; c.height = rows;
  var ctx = c.getContext("2d"), img = ctx.createImageData(cols, rows), d = img.data;
  for (var r = 0; r < rows; r++) {
    for (var k = 0; k < cols; k++) {
      var rgb = colorAt(r, k), o = (r * cols + k) * 4;
      d[o] = rgb[0]; d[o + 1] = rgb[1]; d[o + 2] = rgb[2]; d[o + 3] = rgb.length > 3 ? rgb[3] : 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

// ------------------------------------------------------------------ tooltip
var tip = null;
function tooltip() {
  if (!tip) {
    tip = el("div", { class: "nx-tip", role: "tooltip" });
    document.body.appendChild(tip);
  }
  return tip;
}
// rows: [{color, label, value, strong}]
function showTip(evt, title, rows) {
  var t = tooltip();
  var kids = [];
  if (title) kids.push(el("div", { class: "nx-tip-title", text: title }));
  rows.forEach(function (r) {
    kids.push(el("div", { class: "nx-tip-row" + (r.strong ? " nx-strong" : "") }, [
      r.color ? el("span", { class: "nx-swatch", style: "background:" + r.color }) : null,
      el("span", { class: "nx-tip-label", text: r.label }),
      el("span", { class: "nx-tip-value", text: r.value === undefined ? "" : String(r.value) }),
    ]));
  });
  t.replaceChildren.apply(t, kids);
  t.style.display = "block";
  var x = evt.clientX + 14, y = evt.clientY + 14;
  var w = t.offsetWidth, h = t.offsetHeight;
  if (x + w > window.innerWidth - 8) x = evt.clientX - w - 14;
  if (y + h > window.innerHeight - 8) y = evt.clientY - h - 14;
  t.style.left = Math.max(4, x) + "px";
  t.style.top = Math.max(4, y) + "px";
}
function hideTip() { if (tip) tip.style.display = "none"; }

// ------------------------------------------------------------------ shared chart pieces
// A plot area: base canvas (the chart) + overlay canvas (hover marks), same size.
function plotArea(body, w, h) {
  var wrap = el("div", { class: "nx-plot", style: "width:" + w + "px;height:" + h + "px" });
  var base = makeCanvas(w, h, "nx-canvas");
  var over = makeCanvas(w, h, "nx-overlay");
  wrap.appendChild(base); wrap.appendChild(over);
  body.appendChild(wrap);
  var octx = over.getContext("2d");
  return {
    wrap: wrap, ctx: base.getContext("2d"), octx: octx, w: w, h: h,
    clearOverlay: function () { octx.clearRect(0, 0, w, h); },
    on: function (move, leave) {
      wrap.addEventListener("mousemove", function (e) {
        var r = wrap.getBoundingClientRect();
        move(e, e.clientX - r.left, e.clientY - r.top);
      });
      wrap.addEventListener("mouseleave", function () {
        octx.clearRect(0, 0, w, h); hideTip();
        if (leave) leave();
      });
    },
  };
}

// grid lines, ticks and axis labels around frame f = {l, t, w, h}
function drawAxes(ctx, f, xs, ys, o) {
  setFont(ctx, 11);
  ctx.lineWidth = 1;
  (o.yticks || []).forEach(function (t) {
    var y = Math.round(ys(t.v)) + 0.5;
    if (o.grid !== false) {
      ctx.strokeStyle = GRID;
      ctx.beginPath(); ctx.moveTo(f.l, y); ctx.lineTo(f.l + f.w, y); ctx.stroke();
    }
    ctx.fillStyle = MUTED; ctx.textAlign = "right";
    ctx.fillText(t.s, f.l - 6, y);
  });
  (o.xticks || []).forEach(function (t) {
    var x = Math.round(xs(t.v)) + 0.5;
    if (o.grid !== false) {
      ctx.strokeStyle = GRID;
      ctx.beginPath(); ctx.moveTo(x, f.t); ctx.lineTo(x, f.t + f.h); ctx.stroke();
    }
    ctx.fillStyle = MUTED; ctx.textAlign = "center";
    ctx.fillText(t.s, x, f.t + f.h + 12);
  });
  ctx.strokeStyle = AXIS;
  ctx.beginPath();
  ctx.moveTo(f.l + 0.5, f.t); ctx.lineTo(f.l + 0.5, f.t + f.h + 0.5); ctx.lineTo(f.l + f.w, f.t + f.h + 0.5);
  ctx.stroke();
  setFont(ctx, 12, 500);
  ctx.fillStyle = "#4b5563";
  if (o.xlabel) { ctx.textAlign = "center"; ctx.fillText(o.xlabel, f.l + f.w / 2, f.t + f.h + 30); }
  if (o.ylabel) {
    ctx.save(); ctx.translate(13, f.t + f.h / 2); ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center"; ctx.fillText(o.ylabel, 0, 0); ctx.restore();
  }
}
function linTicks(lo, hi, n) {
  var nt = niceTicks(lo, hi, n);
  return nt.ticks.map(function (v) { return { v: v, s: tickFmt(v, nt.step) }; });
}

function legendItems(items, onClick) {   // items: [{color, label, dashed, marker, off}]
  var box = el("div", { class: "nx-legend" });
  items.forEach(function (it, i) {
    var sw;
    if (it.line) {
      sw = el("span", { class: "nx-line-swatch" + (it.dashed ? " nx-dashed" : ""),
                        style: "border-color:" + it.color });
    } else if (it.marker) {
      sw = el("span", { class: "nx-marker nx-marker-" + it.marker });
    } else {
      sw = el("span", { class: "nx-swatch", style: "background:" + it.color });
    }
    var item = el(onClick ? "button" : "span",
                  { class: "nx-legend-item" + (it.off ? " nx-off" : ""), type: onClick ? "button" : null },
                  [sw, el("span", { text: it.label })]);
    if (onClick) item.addEventListener("click", function () { onClick(i); });
    box.appendChild(item);
  });
  return box;
}

function colorbar(scale, w, labels) {   // a horizontal gradient with end (and 0) labels
  var box = el("div", { class: "nx-colorbar" });
  var c = makeCanvas(w, 10, "nx-cbar");
  var ctx = c.getContext("2d");
  for (var i = 0; i < w; i++) {
    ctx.fillStyle = rgbStr(scale.f(scale.lo + (scale.hi - scale.lo) * (i + 0.5) / w).map(Math.round));
    ctx.fillRect(i, 0, 1.5, 10);
  }
  var lo = labels ? labels[0] : fmt(scale.lo), hi = labels ? labels[1] : fmt(scale.hi);
  box.appendChild(el("span", { class: "nx-cbar-label", text: lo }));
  box.appendChild(c);
  box.appendChild(el("span", { class: "nx-cbar-label", text: hi }));
  return box;
}

// ------------------------------------------------------------------ packed arrays
// netxray/report/packing.py stores numeric arrays as {"$nd": encoding, shape, data: base64,
// ...} and each one once, in payload.arrays, referred to as {"$ref": i}. unpackPayload turns
// both back into nested arrays of numbers, null for NaN/Inf, so the renderers see plain data.
function b64bytes(text) {
  var bin = atob(text), out = new Uint8Array(bin.length);
  for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function half(h) {   // an IEEE 754 binary16 bit pattern as a number
  var e = (h >> 10) & 31, f = h & 1023, s = h & 32768 ? -1 : 1;
  if (e === 31) return NaN;
  return e === 0 ? s * f * Math.pow(2, -24) : s * (1024 + f) * Math.pow(2, e - 25);
}
function unpackFlat(p) {
  var bytes = b64bytes(p.data), dv = new DataView(bytes.buffer);
  var enc = p["$nd"], n, out, i, v;
  if (enc === "f4" || enc === "f8" || enc === "f2") {
    var size = enc === "f8" ? 8 : enc === "f4" ? 4 : 2;
    var scale = enc === "f2" ? Math.pow(2, p.exp) : 1;
    n = bytes.length / size; out = new Array(n);
    for (i = 0; i < n; i++) {
      v = enc === "f8" ? dv.getFloat64(8 * i, true) : enc === "f4" ? dv.getFloat32(4 * i, true)
        : half(dv.getUint16(2 * i, true)) * scale;
      out[i] = isFinite(v) ? v : null;
    }
    return out;
  }
  if (enc === "u8") {
    n = bytes.length; out = new Array(n);
    var per = Array.isArray(p.lo), inner = per && p.shape[0] ? n / p.shape[0] : n;
    for (i = 0; i < n; i++) {
      var k = per ? Math.floor(i / inner) : 0;
      out[i] = bytes[i] === 255 ? null : (per ? p.lo[k] : p.lo) + (per ? p.step[k] : p.step) * bytes[i];
    }
    return out;
  }
  throw new Error("unknown array encoding " + JSON.stringify(enc));
}
function reshape(flat, shape) {
  if (shape.length <= 1) return flat;
  var inner = shape.slice(1), size = inner.reduce(function (a, b) { return a * b; }, 1);
  var out = new Array(shape[0]);
  for (var i = 0; i < shape[0]; i++) out[i] = reshape(flat.slice(i * size, (i + 1) * size), inner);
  return out;
}
function unpackArray(p) { return reshape(unpackFlat(p), p.shape); }
function unpackPayload(payload) {   // a new tree; the payload itself is left as it is
  var table = (payload && payload.arrays) || [], done = {};
  var walk = function (v) {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== "object") return v;
    if (typeof v["$ref"] === "number") {
      if (!(v["$ref"] in done)) {
        if (!table[v["$ref"]]) throw new Error("the data refers to a missing array " + v["$ref"]);
        done[v["$ref"]] = unpackArray(table[v["$ref"]]);
      }
      return done[v["$ref"]];
    }
    if (typeof v["$nd"] === "string") return unpackArray(v);
    var out = {};
    for (var k in v) {
      if (Object.prototype.hasOwnProperty.call(v, k) && !(v === payload && k === "arrays")) out[k] = walk(v[k]);
    }
    return out;
  };
  return walk(payload);
}
