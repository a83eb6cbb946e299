/* netxray front-end: draws a JSON payload of sections of chart specs.
 *
 * One file, no dependencies, no network: it works from file:// (the HTML report) and, fed
 * over HTTP, as the live dashboard. window.netxrayRender(payload) (re)draws everything.
 * Every string from the payload goes into the page through textContent, never as HTML.
 */
(function () {
  "use strict";

  // ------------------------------------------------------------------ palette & colour maps
  var CLASS_COLORS = ["#f59322", "#0877bd", "#4aa564", "#e15759", "#9d6fbf", "#3bb0b0",
                      "#e5c430", "#9c755f", "#f28fb1", "#7f7f7f"];
  var SERIES_COLORS = ["#0877bd", "#f59322", "#4aa564", "#e15759", "#9d6fbf", "#3bb0b0",
                       "#9c755f", "#e5c430", "#f28fb1", "#7f7f7f"];
  var NEG = [245, 147, 34];   // orange: negative (as in TensorFlow Playground)
  var POS = [8, 119, 189];    // blue: positive
  var MID = [250, 250, 250];
  var MISSING = [214, 217, 222];
  var VIRIDIS = ["#440154", "#472c7a", "#3b518b", "#2c718e", "#21908d", "#27ad81", "#5cc863",
                 "#aadc32", "#fde725"].map(hexRgb);
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
  function lerp(a, b, t) {
    return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
  }
  // t in [-1, 1] -> orange, white, blue
  function diverging(t) {
    if (t === null || t !== t) return MISSING;
    t = Math.max(-1, Math.min(1, t));
    return t < 0 ? lerp(MID, NEG, -t) : lerp(MID, POS, t);
  }
  // t in [0, 1]
  function viridis(t) {
    if (t === null || t !== t) return MISSING;
    t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
    var i = Math.min(Math.floor(t), VIRIDIS.length - 2);
    return lerp(VIRIDIS[i], VIRIDIS[i + 1], t - i);
  }
  function gray(t) {   // ink on paper: low white, high near-black
    if (t === null || t !== t) return MISSING;
    t = Math.max(0, Math.min(1, t));
    return lerp([255, 255, 255], [20, 24, 30], t);
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
  function niceStep(span, count) {
    var raw = span / Math.max(1, count);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  }
  function niceTicks(lo, hi, count) {
    var step = niceStep(hi - lo, count), out = [];
    for (var v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return { ticks: out, step: step };
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
      on: function (move) {
        wrap.addEventListener("mousemove", function (e) {
          var r = wrap.getBoundingClientRect();
          move(e, e.clientX - r.left, e.clientY - r.top);
        });
        wrap.addEventListener("mouseleave", function () { octx.clearRect(0, 0, w, h); hideTip(); });
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

  // ------------------------------------------------------------------ lines
  function renderLines(spec, body, st, opts) {
    st.hidden = st.hidden || {};
    var series = spec.series;
    body.appendChild(legendItems(series.map(function (s, i) {
      return { color: seriesColor(i), label: s.name, line: true, dashed: s.dashed, off: st.hidden[s.name] };
    }), series.length > 1 ? function (i) { st.hidden[series[i].name] = !st.hidden[series[i].name]; st.redraw(); } : null));
    var W = opts.width, H = opts.height || Math.round(Math.max(220, Math.min(320, W * 0.62)));
    var P = plotArea(body, W, H), ctx = P.ctx;
    var logY = !!spec.log_y;
    var tr = function (v) {
      if (v === null || v === undefined) return null;
      if (logY) return v > 0 ? Math.log10(v) : null;
      return v;
    };
    var visible = series.filter(function (s) { return !st.hidden[s.name]; });
    var ys = visible.map(function (s) { return s.values.map(tr); });
    var yr = opts.domain && opts.domain.y ? opts.domain.y.map(function (v) { return logY ? Math.log10(v) : v; })
                                          : finiteRange(ys);
    var xr = opts.domain && opts.domain.x ? opts.domain.x : finiteRange([spec.x]);
    yr = pad(yr, 0.06);
    if (xr[0] === xr[1]) xr = pad(xr, 0);
    var f = { l: 58, t: 10, w: W - 58 - 16, h: H - 10 - (spec.xlabel ? 42 : 28) };
    var sx = linear(xr[0], xr[1], f.l, f.l + f.w), sy = linear(yr[0], yr[1], f.t + f.h, f.t);
    var yt = logY ? logTicks(yr[0], yr[1]).map(function (e) { return { v: e, s: fmt(Math.pow(10, e)) }; })
                  : linTicks(yr[0], yr[1], Math.max(3, Math.round(f.h / 50)));
    var xt = spec.x_labels   // named x positions (e.g. layers along depth) or plain numbers
      ? spec.x.map(function (v, i) { return { v: v, s: spec.x_labels[i] }; })
      : linTicks(xr[0], xr[1], Math.max(3, Math.round(f.w / 80)));
    drawAxes(ctx, f, sx, sy, {
      xticks: xt, yticks: yt,
      xlabel: spec.xlabel, ylabel: spec.ylabel + (logY ? " (log)" : ""),
    });
    ctx.save();
    ctx.beginPath(); ctx.rect(f.l, f.t - 2, f.w + 2, f.h + 4); ctx.clip();
    var dots = spec.x.length <= 40;
    series.forEach(function (s, si) {
      if (st.hidden[s.name]) return;
      var col = seriesColor(si);
      ctx.strokeStyle = col; ctx.lineWidth = 2; ctx.lineJoin = "round"; ctx.lineCap = "round";
      ctx.setLineDash(s.dashed ? [6, 4] : []);
      ctx.beginPath();
      var pen = false;
      for (var i = 0; i < spec.x.length; i++) {
        var v = tr(s.values[i]);
        if (v === null) { pen = false; continue; }
        var px = sx(spec.x[i]), py = sy(v);
        if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        pen = true;
      }
      ctx.stroke();
      ctx.setLineDash([]);
      if (dots) {
        ctx.fillStyle = col;
        for (var j = 0; j < spec.x.length; j++) {
          var vj = tr(s.values[j]);
          if (vj === null) continue;
          ctx.beginPath(); ctx.arc(sx(spec.x[j]), sy(vj), 2.5, 0, 2 * Math.PI); ctx.fill();
        }
      }
    });
    ctx.restore();
    P.on(function (e, mx, my) {
      P.clearOverlay();
      if (mx < f.l - 4 || mx > f.l + f.w + 4) { hideTip(); return; }
      var xv = sx.invert(mx), best = 0;
      for (var i = 1; i < spec.x.length; i++) if (Math.abs(spec.x[i] - xv) < Math.abs(spec.x[best] - xv)) best = i;
      var o = P.octx, px = Math.round(sx(spec.x[best])) + 0.5;
      o.strokeStyle = "rgba(31,35,40,0.35)"; o.lineWidth = 1;
      o.beginPath(); o.moveTo(px, f.t); o.lineTo(px, f.t + f.h); o.stroke();
      var rows = [];
      series.forEach(function (s, si) {
        if (st.hidden[s.name]) return;
        var v = s.values[best], t = tr(v);
        rows.push({ color: seriesColor(si), label: s.name, value: fmt(v) });
        if (t === null) return;
        o.fillStyle = "#fff"; o.strokeStyle = seriesColor(si); o.lineWidth = 2;
        o.beginPath(); o.arc(px, sy(t), 4, 0, 2 * Math.PI); o.fill(); o.stroke();
      });
      showTip(e, (spec.xlabel || "x") + " = " + fmt(spec.x[best]), rows);
    });
  }

  // ------------------------------------------------------------------ heatmap
  function renderHeatmap(spec, body, st, opts) {
    var M = spec.matrix, rows = M.length, cols = M[0].length;
    var range = opts.range || finiteRange(M) || [0, 1];
    var lo = spec.vmin !== null && spec.vmin !== undefined ? spec.vmin : range[0];
    var hi = spec.vmax !== null && spec.vmax !== undefined ? spec.vmax : range[1];
    var scale = colorScale(spec.cmap, lo, hi);
    var W = opts.width;
    var mh = Math.max(160, Math.min(460, rows * 20));
    var showRows = mh / rows >= 11, rl = spec.row_labels;
    var meas = makeCanvas(1, 1).getContext("2d");
    var rowText = showRows ? (rl || M.map(function (_, i) { return String(i); })) : [];
    var left = 12 + (spec.ylabel ? 20 : 0) + (showRows ? Math.min(150, textWidth(meas, rowText, 11) + 8) : 0);
    var strip = spec.row_groups ? 12 : 0;
    var right = 8;
    var mw = W - left - strip - right;
    var cl = spec.col_labels || M[0].map(function (_, i) { return String(i); });
    var colW = mw / cols;
    var maxColText = textWidth(meas, cl, 11);
    var rotate = maxColText > colW - 4;
    var colStep = rotate ? Math.max(1, Math.ceil(14 / colW)) : 1;
    var bottom = (rotate ? Math.min(90, maxColText * 0.72 + 14) : 22) + (spec.xlabel ? 22 : 0);
    var H = mh + 8 + bottom;
    var P = plotArea(body, W, H), ctx = P.ctx;
    var f = { l: left + strip, t: 8, w: mw, h: mh };
    var img = cellImage(rows, cols, function (r, k) { return scale.f(M[r][k]).map(Math.round); });
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(img, f.l, f.t, f.w, f.h);
    var rowH = mh / rows;
    if (spec.row_groups) {
      var g = spec.row_groups;
      for (var r = 0; r < rows; r++) {
        ctx.fillStyle = classColor(g.values[r]);
        ctx.fillRect(left, f.t + r * rowH, strip - 3, Math.max(rowH, 0.75));
      }
    }
    setFont(ctx, 11);
    ctx.fillStyle = MUTED;
    if (showRows) {
      ctx.textAlign = "right";
      rowText.forEach(function (t, i) {
        ctx.fillText(ellipsize(ctx, t, left - 14 - (spec.ylabel ? 20 : 0)), left - 5, f.t + (i + 0.5) * rowH);
      });
    }
    for (var k = 0; k < cols; k += colStep) {
      var cx = f.l + (k + 0.5) * colW;
      if (rotate) {
        ctx.save(); ctx.translate(cx, f.t + f.h + 6); ctx.rotate(-Math.PI / 4);
        ctx.textAlign = "right"; ctx.fillText(ellipsize(ctx, cl[k], 110), 0, 0); ctx.restore();
      } else {
        ctx.textAlign = "center"; ctx.fillText(cl[k], cx, f.t + f.h + 11);
      }
    }
    setFont(ctx, 12, 500); ctx.fillStyle = "#4b5563"; ctx.textAlign = "center";
    if (spec.xlabel) ctx.fillText(spec.xlabel, f.l + f.w / 2, H - 10);
    if (spec.ylabel) {
      ctx.save(); ctx.translate(12, f.t + f.h / 2); ctx.rotate(-Math.PI / 2);
      ctx.fillText(spec.ylabel, 0, 0); ctx.restore();
    }
    var foot = el("div", { class: "nx-foot" }, [colorbar(scale, 160)]);
    if (spec.row_groups) {
      foot.appendChild(legendItems(spec.row_groups.categories.map(function (c, i) {
        return { color: classColor(i), label: c };
      })));
    }
    body.appendChild(foot);
    P.on(function (e, mx, my) {
      P.clearOverlay();
      var k = Math.floor((mx - f.l) / colW), r = Math.floor((my - f.t) / rowH);
      if (k < 0 || k >= cols || r < 0 || r >= rows) { hideTip(); return; }
      var o = P.octx;
      o.strokeStyle = INK; o.lineWidth = 1.5;
      o.strokeRect(f.l + k * colW, f.t + r * rowH, Math.max(colW, 2), Math.max(rowH, 2));
      var tr = [{ label: spec.xlabel || "column", value: cl[k] },
                { label: "value", value: fmt(M[r][k]), strong: true }];
      if (spec.row_groups) {
        var gi = spec.row_groups.values[r];
        tr.push({ color: classColor(gi), label: "group", value: spec.row_groups.categories[gi] });
      }
      showTip(e, (spec.ylabel || "row") + " " + (rl ? rl[r] : r), tr);
    });
  }

  // ------------------------------------------------------------------ surface
  function contour(ctx, F, sx, sy, xs, ys) {   // marching squares of F (ny x nx) at level 0
    var ny = F.length, nx = F[0].length;
    ctx.beginPath();
    for (var j = 0; j < ny - 1; j++) {
      for (var i = 0; i < nx - 1; i++) {
        var a = F[j][i], b = F[j][i + 1], c = F[j + 1][i + 1], d = F[j + 1][i];
        var pts = [];
        var edge = function (v1, v2, x1, y1, x2, y2) {
          if ((v1 > 0) === (v2 > 0)) return;
          var t = v1 / (v1 - v2);
          pts.push([sx(x1 + (x2 - x1) * t), sy(y1 + (y2 - y1) * t)]);
        };
        edge(a, b, xs[i], ys[j], xs[i + 1], ys[j]);
        edge(b, c, xs[i + 1], ys[j], xs[i + 1], ys[j + 1]);
        edge(d, c, xs[i], ys[j + 1], xs[i + 1], ys[j + 1]);
        edge(a, d, xs[i], ys[j], xs[i], ys[j + 1]);
        for (var p = 0; p + 1 < pts.length; p += 2) {
          ctx.moveTo(pts[p][0], pts[p][1]); ctx.lineTo(pts[p + 1][0], pts[p + 1][1]);
        }
      }
    }
    ctx.stroke();
  }

  function renderSurface(spec, body, st, opts) {
    var C = spec.class_names.length, X = spec.x, Y = spec.y, Pr = spec.probs;
    var ny = Y.length, nx = X.length;
    var rgbs = spec.class_names.map(function (_, i) { return classRgb(i); });
    var legend = spec.class_names.map(function (n, i) { return { color: classColor(i), label: n }; });
    var hasTest = spec.points.some(function (p) { return p.marker === "test"; });
    if (spec.points.length) {
      legend.push({ marker: "train", label: "train" });
      if (hasTest) legend.push({ marker: "test", label: "test" });
    }
    if (spec.arrows.length) legend.push({ marker: "arrow", label: "gradient" });
    body.appendChild(legendItems(legend));
    var W = Math.min(opts.width, 560);
    var side = W - 52 - 12;
    var H = side + 12 + (spec.xlabel ? 42 : 28);
    var P = plotArea(body, W, H), ctx = P.ctx;
    var f = { l: 52, t: 12, w: side, h: side };
    var dx = (X[nx - 1] - X[0]) / (nx - 1), dy = (Y[ny - 1] - Y[0]) / (ny - 1);
    var sx = linear(X[0], X[nx - 1], f.l, f.l + f.w), sy = linear(Y[0], Y[ny - 1], f.t + f.h, f.t);
    var img = cellImage(ny, nx, function (r, k) {
      var p = Pr[ny - 1 - r][k], mix = [0, 0, 0], mx = 0;
      for (var c = 0; c < C; c++) {
        mix[0] += p[c] * rgbs[c][0]; mix[1] += p[c] * rgbs[c][1]; mix[2] += p[c] * rgbs[c][2];
        if (p[c] > mx) mx = p[c];
      }
      var conf = (mx - 1 / C) / (1 - 1 / C);
      var a = 0.1 + 0.56 * Math.pow(Math.max(0, conf), 0.85);
      return [255 + (mix[0] - 255) * a, 255 + (mix[1] - 255) * a, 255 + (mix[2] - 255) * a].map(Math.round);
    });
    ctx.save();
    ctx.beginPath(); ctx.rect(f.l, f.t, f.w, f.h); ctx.clip();
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(img, sx(X[0] - dx / 2), sy(Y[ny - 1] + dy / 2), f.w + f.w / (nx - 1), f.h + f.h / (ny - 1));
    // boundary: where the top class changes
    ctx.strokeStyle = "rgba(31,35,40,0.55)"; ctx.lineWidth = 1.3;
    for (var c = 0; c < (C === 2 ? 1 : C); c++) {
      var F = Pr.map(function (row) {
        return row.map(function (p) {
          if (C === 2) return p[1] - p[0];
          var other = -1;
          for (var k = 0; k < C; k++) if (k !== c && p[k] > other) other = p[k];
          return p[c] - other;
        });
      });
      contour(ctx, F, sx, sy, X, Y);
    }
    // arrows (e.g. input gradients), the longest a fixed fraction of the plot
    if (spec.arrows.length) {
      var maxLen = 0;
      spec.arrows.forEach(function (a) {
        maxLen = Math.max(maxLen, Math.hypot(a.dx * f.w / (X[nx - 1] - X[0]), a.dy * f.h / (Y[ny - 1] - Y[0])));
      });
      var k = maxLen > 0 ? (f.w * 0.1) / maxLen : 0;
      ctx.strokeStyle = "rgba(31,35,40,0.7)"; ctx.fillStyle = "rgba(31,35,40,0.7)"; ctx.lineWidth = 1.2;
      spec.arrows.forEach(function (a) {
        var x0 = sx(a.x), y0 = sy(a.y);
        var ux = a.dx * f.w / (X[nx - 1] - X[0]) * k, uy = -a.dy * f.h / (Y[ny - 1] - Y[0]) * k;
        var len = Math.hypot(ux, uy);
        if (len < 0.5) return;
        var x1 = x0 + ux, y1 = y0 + uy, ang = Math.atan2(uy, ux), hl = Math.min(5, len * 0.45);
        ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
        ctx.beginPath(); ctx.moveTo(x1, y1);
        ctx.lineTo(x1 - hl * Math.cos(ang - 0.45), y1 - hl * Math.sin(ang - 0.45));
        ctx.lineTo(x1 - hl * Math.cos(ang + 0.45), y1 - hl * Math.sin(ang + 0.45));
        ctx.closePath(); ctx.fill();
      });
    }
    // points on top
    var n = spec.points.length, rad = n > 1500 ? 2.5 : n > 400 ? 3.5 : 4.5;
    var order = spec.points.map(function (_, i) { return i; })
      .sort(function (a, b) { return (spec.points[a].marker === "test") - (spec.points[b].marker === "test"); });
    order.forEach(function (i) {
      var p = spec.points[i];
      ctx.beginPath();
      if (p.marker === "test") ctx.rect(sx(p.x) - rad * 0.9, sy(p.y) - rad * 0.9, rad * 1.8, rad * 1.8);
      else ctx.arc(sx(p.x), sy(p.y), rad, 0, 2 * Math.PI);
      ctx.fillStyle = classColor(p.label); ctx.fill();
      ctx.lineWidth = p.marker === "test" ? 1.6 : 1;
      ctx.strokeStyle = p.marker === "test" ? INK : "#ffffff";
      ctx.stroke();
    });
    ctx.restore();
    var xt = linTicks(X[0], X[nx - 1], Math.max(3, Math.round(f.w / 80)));
    var yt = linTicks(Y[0], Y[ny - 1], Math.max(3, Math.round(f.h / 60)));
    drawAxes(ctx, f, sx, sy, { xticks: xt, yticks: yt, xlabel: spec.xlabel, ylabel: spec.ylabel, grid: false });
    ctx.strokeStyle = AXIS; ctx.strokeRect(f.l + 0.5, f.t + 0.5, f.w, f.h);
    P.wrap.nxPoint = function (i) { return { x: sx(spec.points[i].x), y: sy(spec.points[i].y) }; };
    P.on(function (e, mx, my) {
      P.clearOverlay();
      if (mx < f.l || mx > f.l + f.w || my < f.t || my > f.t + f.h) { hideTip(); return; }
      var best = -1, bd = 81;
      spec.points.forEach(function (p, i) {
        var d = Math.pow(sx(p.x) - mx, 2) + Math.pow(sy(p.y) - my, 2);
        if (d < bd) { bd = d; best = i; }
      });
      var xv = sx.invert(mx), yv = sy.invert(my);
      var k = Math.max(0, Math.min(nx - 1, Math.round((xv - X[0]) / dx)));
      var r = Math.max(0, Math.min(ny - 1, Math.round((yv - Y[0]) / dy)));
      var rows = spec.class_names.map(function (nm, c) {
        return { color: classColor(c), label: "P(" + nm + ")", value: fmt(Pr[r][k][c]) };
      });
      var title = "(" + fmt(xv) + ", " + fmt(yv) + ")";
      if (best >= 0) {
        var p = spec.points[best], o = P.octx;
        o.strokeStyle = INK; o.lineWidth = 2;
        o.beginPath(); o.arc(sx(p.x), sy(p.y), rad + 3, 0, 2 * Math.PI); o.stroke();
        title = p.marker + " point" + (p.index !== undefined ? " #" + p.index : "") +
                " (" + fmt(p.x) + ", " + fmt(p.y) + ")";
        rows.unshift({ color: classColor(p.label), label: "class", value: spec.class_names[p.label], strong: true });
      }
      showTip(e, title, rows);
    });
  }

  // ------------------------------------------------------------------ scatter
  function renderScatter(spec, body, st, opts) {
    var cb = spec.color_by, n = spec.x.length;
    if (st.color === undefined || st.color >= cb.length) st.color = 0;
    var cur = cb.length ? cb[st.color] : null;
    var bar = el("div", { class: "nx-controls" });
    if (cb.length > 1) {
      var sel = el("select", { class: "nx-select", "aria-label": "colour by" });
      cb.forEach(function (c, i) {
        var o = el("option", { value: String(i), text: c.name });
        if (i === st.color) o.selected = true;
        sel.appendChild(o);
      });
      sel.addEventListener("change", function () { st.color = +sel.value; st.redraw(); });
      bar.appendChild(el("label", { class: "nx-select-label" }, ["colour by ", sel]));
    }
    var colorOf, scale = null;
    if (!cur) {
      colorOf = function () { return SERIES_COLORS[0]; };
    } else if (cur.type === "categorical") {
      colorOf = function (i) { return catColor(cur, cur.values[i]); };
      bar.appendChild(legendItems(cur.categories.map(function (c, i) { return { color: catColor(cur, i), label: c }; })));
    } else {
      var r = finiteRange([cur.values]) || [0, 1];
      scale = colorScale(r[0] < 0 && r[1] > 0 ? "diverging" : "viridis", r[0], r[1]);
      colorOf = function (i) { return rgbStr(scale.f(cur.values[i]).map(Math.round)); };
      bar.appendChild(colorbar(scale, 140));
    }
    body.appendChild(bar);
    var W = opts.width, H = Math.round(Math.max(260, Math.min(440, W * 0.72)));
    var P = plotArea(body, W, H), ctx = P.ctx;
    var f = { l: 52, t: 10, w: W - 52 - 14, h: H - 10 - (spec.xlabel ? 42 : 28) };
    var xr = opts.domain && opts.domain.x ? opts.domain.x : pad(finiteRange([spec.x]), 0.05);
    var yr = opts.domain && opts.domain.y ? opts.domain.y : pad(finiteRange([spec.y]), 0.05);
    var sx = linear(xr[0], xr[1], f.l, f.l + f.w), sy = linear(yr[0], yr[1], f.t + f.h, f.t);
    drawAxes(ctx, f, sx, sy, {
      xticks: linTicks(xr[0], xr[1], Math.max(3, Math.round(f.w / 80))),
      yticks: linTicks(yr[0], yr[1], Math.max(3, Math.round(f.h / 55))),
      xlabel: spec.xlabel, ylabel: spec.ylabel,
    });
    var rad = n > 3000 ? 2 : n > 600 ? 2.8 : n > 150 ? 3.6 : 4.5;
    var px = new Float64Array(n), py = new Float64Array(n);
    ctx.save(); ctx.beginPath(); ctx.rect(f.l, f.t, f.w, f.h); ctx.clip();
    ctx.globalAlpha = n > 600 ? 0.75 : 0.9;
    for (var i = 0; i < n; i++) {
      px[i] = sx(spec.x[i]); py[i] = sy(spec.y[i]);
      ctx.beginPath(); ctx.arc(px[i], py[i], rad, 0, 2 * Math.PI);
      ctx.fillStyle = colorOf(i); ctx.fill();
      if (n <= 600) { ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.lineWidth = 0.8; ctx.stroke(); }
    }
    ctx.restore();
    P.wrap.nxPoint = function (i) { return { x: px[i], y: py[i] }; };
    P.on(function (e, mx, my) {
      P.clearOverlay();
      var best = -1, bd = 100;
      for (var i = 0; i < n; i++) {
        var d = (px[i] - mx) * (px[i] - mx) + (py[i] - my) * (py[i] - my);
        if (d < bd) { bd = d; best = i; }
      }
      if (best < 0) { hideTip(); return; }
      var o = P.octx;
      o.strokeStyle = INK; o.lineWidth = 2;
      o.beginPath(); o.arc(px[best], py[best], rad + 3, 0, 2 * Math.PI); o.stroke();
      var rows = [{ label: spec.xlabel || "x", value: fmt(spec.x[best]) },
                  { label: spec.ylabel || "y", value: fmt(spec.y[best]) }];
      cb.forEach(function (c, ci) {
        var v = c.values[best];
        rows.push(c.type === "categorical"
          ? { color: catColor(c, v), label: c.name, value: c.categories[v], strong: ci === st.color }
          : { label: c.name, value: fmt(v), strong: ci === st.color });
      });
      showTip(e, "point #" + best, rows);
    });
  }

  // ------------------------------------------------------------------ thumbnails & images
  function tileGrid(body, items, size, draw, tipFor, marks) {
    var grid = el("div", { class: "nx-tiles" });
    items.forEach(function (item, i) {
      var c = makeCanvas(size, size, "nx-canvas nx-tile-canvas");
      draw(c.getContext("2d"), i, size);
      var tile = el("div", { class: "nx-tile" + (marks && marks[i] ? " nx-marked" : "") }, [
        el("div", { class: "nx-tile-frame" }, [c,
          marks && marks[i] ? el("span", { class: "nx-badge", text: marks.label }) : null]),
        el("div", { class: "nx-tile-label", text: item, title: item }),
      ]);
      c.addEventListener("mousemove", function (e) {
        var r = c.getBoundingClientRect();
        var t = tipFor(i, (e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height);
        showTip(e, t[0], t[1]);
      });
      c.addEventListener("mouseleave", hideTip);
      grid.appendChild(tile);
    });
    body.appendChild(grid);
  }
  function drawCells(ctx, arr, size, colorAt, smooth, flip) {
    var rows = arr.length, cols = arr[0].length;
    var img = cellImage(rows, cols, function (r, k) {
      return colorAt(arr[flip ? rows - 1 - r : r][k]).map(Math.round);
    });
    ctx.imageSmoothingEnabled = smooth;
    if (smooth) ctx.imageSmoothingQuality = "high";
    ctx.drawImage(img, 0, 0, size, size);
  }

  function renderThumbnails(spec, body, st, opts) {
    var maps = spec.maps, u = maps.length;
    var size = u > 48 ? 64 : u > 16 ? 80 : 88;
    var ranges = maps.map(function (m) {
      var r = finiteRange(m) || [0, 0];
      return Math.max(Math.abs(r[0]), Math.abs(r[1]));
    });
    var shared = Math.max.apply(null, ranges);
    var scaleOf = function (i) { return (spec.shared_scale ? shared : ranges[i]) || 1; };
    var marks = spec.marked.slice();
    marks.label = spec.mark_label;
    var nMarked = spec.marked.filter(Boolean).length;
    var head = el("div", { class: "nx-controls" }, [
      colorbar(colorScale("diverging", -1, 1), 120, spec.shared_scale ? [fmt(-shared), fmt(shared)] : ["\u2212max", "+max"]),
      el("span", { class: "nx-note", text: spec.shared_scale ? "one scale for all maps" : "each map on its own scale" }),
      nMarked ? el("span", { class: "nx-note nx-note-bad", text: nMarked + " of " + u + " " + spec.mark_label }) : null,
    ]);
    body.appendChild(head);
    tileGrid(body, spec.labels, size, function (ctx, i, s) {
      var m = scaleOf(i);
      drawCells(ctx, maps[i], s, function (v) { return v === null ? MISSING : diverging(v / m); }, true, true);
    }, function (i, fx, fy) {
      var rows = maps[i].length, cols = maps[i][0].length;
      var k = Math.min(cols - 1, Math.floor(fx * cols)), r = Math.min(rows - 1, Math.floor((1 - fy) * rows));
      var out = [{ label: "value", value: fmt(maps[i][r][k]), strong: true },
                 { label: "max |value|", value: fmt(ranges[i]) }];
      if (spec.extent) {
        var e = spec.extent;
        out.push({ label: "at", value: "(" + fmt(e[0] + (e[1] - e[0]) * fx) + ", " + fmt(e[3] - (e[3] - e[2]) * fy) + ")" });
      }
      if (spec.marked[i]) out.push({ color: "#d92d20", label: spec.mark_label, value: "" });
      return [spec.labels[i], out];
    }, marks);
  }

  function renderImages(spec, body, st, opts) {
    var ims = spec.images, n = ims.length, h = ims[0].length, w = ims[0][0].length;
    var size = Math.max(48, Math.min(112, Math.round(Math.max(h, w) * (Math.max(h, w) <= 16 ? 11 : 3))));
    var shared = finiteRange(ims.map(flat2)) || [0, 1];
    var rangeOf = function (i) { return spec.shared_scale ? shared : (finiteRange(ims[i]) || [0, 1]); };
    var scales = ims.map(function (_, i) { var r = rangeOf(i); return colorScale(spec.cmap, r[0], r[1]); });
    var s0 = colorScale(spec.cmap, shared[0], shared[1]);
    body.appendChild(el("div", { class: "nx-controls" }, [
      colorbar(s0, 120, spec.shared_scale ? null : spec.cmap === "diverging" ? ["\u2212max", "+max"] : ["min", "max"]),
      el("span", { class: "nx-note", text: spec.shared_scale ? "one scale for all images" : "each image on its own scale" }),
    ]));
    tileGrid(body, spec.labels, size, function (ctx, i, s) {
      drawCells(ctx, ims[i], s, scales[i].f, false, false);
    }, function (i, fx, fy) {
      var k = Math.min(w - 1, Math.floor(fx * w)), r = Math.min(h - 1, Math.floor(fy * h));
      return [spec.labels[i], [{ label: "pixel", value: "(" + r + ", " + k + ")" },
                               { label: "value", value: fmt(ims[i][r][k]), strong: true }]];
    }, null);
    body.lastChild.classList.add("nx-pixelated");
  }

  // ------------------------------------------------------------------ bars
  function renderBars(spec, body, st, opts) {
    var n = spec.values.length, W = opts.width;
    var rowH = n > 30 ? 16 : 24;
    var meas = makeCanvas(1, 1).getContext("2d");
    var lw = Math.min(W * 0.38, textWidth(meas, spec.labels, 12) + 14);
    var H = n * rowH + 12 + (spec.xlabel ? 44 : 28);
    var P = plotArea(body, W, H), ctx = P.ctx;
    var r = finiteRange([spec.values]) || [0, 1];
    var padL = spec.signed && r[0] < 0 ? 52 : 6;
    var f = { l: lw + padL, t: 8, w: W - lw - padL - 56, h: n * rowH };
    var dom = spec.signed ? [Math.min(0, r[0]), Math.max(0, r[1])] : [0, Math.max(0, r[1])];
    if (dom[0] === dom[1]) dom[1] = dom[0] + 1;
    var nt = niceTicks(dom[0], dom[1], Math.max(3, Math.round(f.w / 90)));
    dom = [Math.min(dom[0], nt.ticks[0]), Math.max(dom[1], nt.ticks[nt.ticks.length - 1])];
    var sx = linear(dom[0], dom[1], f.l, f.l + f.w);
    ctx.fillStyle = "#fcfcfd"; ctx.fillRect(f.l, f.t, f.w, f.h);
    drawAxes(ctx, f, sx, null, {
      xticks: nt.ticks.map(function (v) { return { v: v, s: tickFmt(v, nt.step) }; }), xlabel: spec.xlabel,
    });
    var x0 = sx(0);
    setFont(ctx, 12);
    spec.values.forEach(function (v, i) {
      var yc = f.t + (i + 0.5) * rowH, bh = rowH * 0.66;
      ctx.fillStyle = INK; ctx.textAlign = "right";
      ctx.fillText(ellipsize(ctx, spec.labels[i], lw - 12), lw - 8, yc);
      if (v === null) {
        ctx.fillStyle = MUTED; ctx.textAlign = "left"; ctx.fillText("\u2014", x0 + 4, yc); return;
      }
      var x1 = sx(v);
      ctx.fillStyle = spec.signed ? (v < 0 ? rgbStr(NEG) : rgbStr(POS)) : rgbStr(POS);
      ctx.fillRect(Math.min(x0, x1), yc - bh / 2, Math.max(1, Math.abs(x1 - x0)), bh);
      ctx.fillStyle = MUTED; setFont(ctx, 11);
      ctx.textAlign = v < 0 ? "right" : "left";
      ctx.fillText(fmt(v), v < 0 ? Math.min(x0, x1) - 4 : Math.max(x0, x1) + 4, yc);
      setFont(ctx, 12);
    });
    ctx.strokeStyle = "#9aa1ab"; ctx.beginPath();
    ctx.moveTo(Math.round(x0) + 0.5, f.t); ctx.lineTo(Math.round(x0) + 0.5, f.t + f.h); ctx.stroke();
    P.on(function (e, mx, my) {
      P.clearOverlay();
      var i = Math.floor((my - f.t) / rowH);
      if (i < 0 || i >= n) { hideTip(); return; }
      P.octx.fillStyle = "rgba(8,119,189,0.07)";
      P.octx.fillRect(0, f.t + i * rowH, W, rowH);
      showTip(e, spec.labels[i], [{ label: "value", value: fmt(spec.values[i]), strong: true }]);
    });
  }

  // ------------------------------------------------------------------ table
  function renderTable(spec, body, st) {
    var rows = spec.rows.slice();
    if (st.sort) {
      var c = st.sort.col, dir = st.sort.dir;
      rows.sort(function (a, b) {
        var x = a[c], y = b[c];
        if (x === null) return 1;
        if (y === null) return -1;
        if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
        return String(x).localeCompare(String(y)) * dir;
      });
    }
    var numeric = spec.columns.map(function (_, j) {
      return spec.rows.length > 0 && spec.rows.every(function (r) { return r[j] === null || typeof r[j] === "number"; });
    });
    var head = el("tr", null, spec.columns.map(function (name, j) {
      var arrow = st.sort && st.sort.col === j ? (st.sort.dir > 0 ? " \u25B2" : " \u25BC") : "";
      var th = el("th", { class: numeric[j] ? "nx-num" : null, tabindex: "0", title: "sort" }, [name + arrow]);
      var sort = function () {
        st.sort = { col: j, dir: st.sort && st.sort.col === j ? -st.sort.dir : 1 };
        st.redraw();
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
      return th;
    }));
    var tbody = el("tbody", null, rows.map(function (r) {
      return el("tr", null, r.map(function (v, j) {
        return el("td", { class: numeric[j] ? "nx-num" : null, text: fmt(v) });
      }));
    }));
    if (!rows.length) {
      tbody.appendChild(el("tr", null, [el("td", { colspan: String(spec.columns.length), class: "nx-empty", text: "no rows" })]));
    }
    body.appendChild(el("div", { class: "nx-table-wrap" }, [el("table", { class: "nx-table" }, [el("thead", null, [head]), tbody])]));
  }

  // ------------------------------------------------------------------ findings
  function humanize(s) { return s.replace(/_/g, " "); }
  function renderFindings(spec, body) {
    var items = spec.items;
    if (!items.length) {
      body.appendChild(el("div", { class: "nx-finding nx-sev-ok" }, [
        el("div", { class: "nx-finding-head" }, [el("span", { class: "nx-sev", text: "ok" })]),
        el("p", { class: "nx-finding-text", text: "No problems found." }),
      ]));
      return;
    }
    var counts = {};
    items.forEach(function (it) { counts[it.severity] = (counts[it.severity] || 0) + 1; });
    body.appendChild(el("div", { class: "nx-finding-summary" }, SEVERITY_ORDER.filter(function (s) { return counts[s]; })
      .map(function (s) { return el("span", { class: "nx-chip nx-sev-" + s, text: counts[s] + " " + s }); })));
    var list = el("div", { class: "nx-findings" });
    items.forEach(function (it) {
      var head = el("div", { class: "nx-finding-head" }, [
        el("span", { class: "nx-sev", text: it.severity }),
        it.kind ? el("span", { class: "nx-finding-kind", text: humanize(it.kind) }) : null,
        it.layer ? el("code", { class: "nx-layer", text: it.layer }) : null,
      ]);
      var kids = [head, el("p", { class: "nx-finding-text", text: it.text })];
      if (it.advice) {
        kids.push(el("p", { class: "nx-advice" }, [el("span", { class: "nx-advice-label", text: "What to try" }), it.advice]));
      }
      var small = [];
      if (it.units && it.units.length) {
        var shown = it.units.slice(0, 24).join(", ") + (it.units.length > 24 ? ", \u2026 (" + it.units.length + ")" : "");
        small.push(el("span", { class: "nx-pill", text: "units " + shown }));
      }
      if (it.evidence) {
        Object.keys(it.evidence).forEach(function (k) {
          small.push(el("span", { class: "nx-pill", text: humanize(k) + " " + fmt(it.evidence[k]) }));
        });
      }
      if (small.length) kids.push(el("div", { class: "nx-evidence" }, small));
      list.appendChild(el("div", { class: "nx-finding nx-sev-" + it.severity }, kids));
    });
    body.appendChild(list);
  }

  // ------------------------------------------------------------------ slider
  function sharedDomain(frames) {
    var kind = frames[0].kind;
    if (kind === "scatter") {
      return { domain: { x: pad(finiteRange(frames.map(function (f) { return f.x; })), 0.05),
                         y: pad(finiteRange(frames.map(function (f) { return f.y; })), 0.05) } };
    }
    if (kind === "lines") {
      var ys = [];
      frames.forEach(function (f) {
        f.series.forEach(function (s) {
          ys.push(f.log_y ? s.values.map(function (v) { return v > 0 ? v : null; }) : s.values);
        });
      });
      var yr = finiteRange(ys);
      return { domain: { x: finiteRange(frames.map(function (f) { return f.x; })), y: yr } };
    }
    if (kind === "heatmap") {
      return { range: finiteRange(frames.map(function (f) { return flat2(f.matrix); })) };
    }
    return {};
  }
  function renderSlider(spec, body, st, opts) {
    var n = spec.frames.length;
    if (st.index === undefined || st.index >= n) st.index = n - 1;
    var shared = sharedDomain(spec.frames);
    var range = el("input", { type: "range", min: "0", max: String(n - 1), step: "1",
                              value: String(st.index), class: "nx-range", "aria-label": "frame" });
    var label = el("span", { class: "nx-frame-label", text: spec.frame_labels[st.index] });
    var play = el("button", { type: "button", class: "nx-play", "aria-label": "play", text: st.timer ? "\u275A\u275A" : "\u25B6" });
    var stage = el("div", { class: "nx-stage" });
    body.appendChild(el("div", { class: "nx-controls nx-slider" }, [play, range, label]));
    body.appendChild(stage);
    var draw = function () {
      var frame = spec.frames[st.index];
      var fst = st.frame = st.frame || {};   // one state for all frames: a colouring chosen stays
      fst.redraw = draw;
      stage.replaceChildren();
      label.textContent = spec.frame_labels[st.index];
      range.value = String(st.index);
      var o = { width: opts.width };
      for (var k in shared) o[k] = shared[k];
      RENDERERS[frame.kind](frame, stage, fst, o);
    };
    var stop = function () {
      if (st.timer) { clearInterval(st.timer); st.timer = null; }
      play.textContent = "\u25B6";
    };
    range.addEventListener("input", function () { stop(); st.index = +range.value; draw(); });
    play.addEventListener("click", function () {
      if (st.timer) { stop(); return; }
      if (st.index >= n - 1) st.index = 0;
      draw();
      play.textContent = "\u275A\u275A";
      st.timer = setInterval(function () {
        if (!document.body.contains(stage)) { stop(); return; }
        if (st.index >= n - 1) { stop(); return; }
        st.index += 1; draw();
      }, Math.max(120, Math.min(700, 6000 / n)));
    });
    draw();
  }

  var RENDERERS = {
    lines: renderLines, heatmap: renderHeatmap, surface: renderSurface, scatter: renderScatter,
    thumbnails: renderThumbnails, bars: renderBars, table: renderTable, findings: renderFindings,
    images: renderImages, slider: renderSlider,
  };
  var WIDE = { heatmap: 1, thumbnails: 1, images: 1, table: 1, findings: 1 };

  // ------------------------------------------------------------------ page
  var STATE = {};     // per-chart UI state (selected colouring, slider frame, sort), kept across redraws
  var CARDS = [];
  var current = null;

  function drawCard(card) {
    var spec = card.spec, body = card.body, st = card.state;
    if (st.timer) { clearInterval(st.timer); st.timer = null; }
    body.replaceChildren();
    card.el.removeAttribute("data-error");
    st.redraw = function () { drawCard(card); };
    try {
      var r = RENDERERS[spec && spec.kind];
      if (!r) throw new Error("unknown chart kind " + JSON.stringify(spec && spec.kind) +
                              "; known: " + Object.keys(RENDERERS).join(", "));
      var width = Math.max(240, Math.floor(body.clientWidth || 480));
      r(spec, body, st, { width: width });
      card.el.setAttribute("data-rendered", "1");
    } catch (err) {
      body.replaceChildren(el("div", { class: "nx-error" }, [
        el("strong", { text: "This chart could not be drawn. " }),
        el("span", { text: String(err && err.message || err) }),
      ]));
      card.el.setAttribute("data-error", String(err && err.message || err));
      card.el.removeAttribute("data-rendered");
      console.error("netxray: chart \"" + (spec && spec.title) + "\" failed:", err);
    }
  }

  function header(p) {
    var meta = p.meta || {};
    var keys = Object.keys(meta);
    return el("header", { class: "nx-header" }, [
      el("h1", { class: "nx-title", text: p.title || "netxray report" }),
      p.subtitle ? el("p", { class: "nx-subtitle", text: p.subtitle }) : null,
      keys.length ? el("dl", { class: "nx-meta" }, keys.map(function (k) {
        return el("div", { class: "nx-meta-item" }, [el("dt", { text: k }), el("dd", { text: fmt(meta[k]) })]);
      })) : null,
    ]);
  }

  function render(payload) {
    var root = document.getElementById("nx-root");
    if (!root) throw new Error("netxray: no #nx-root element on the page");
    CARDS.forEach(function (c) { if (c.state.timer) { clearInterval(c.state.timer); c.state.timer = null; } });
    CARDS = [];
    current = payload;
    var scroll = window.scrollY;
    if (!payload || !Array.isArray(payload.sections)) {
      root.replaceChildren(el("div", { class: "nx-error nx-page-error", text: "netxray: the data has no 'sections' list." }));
      console.error("netxray: payload has no sections", payload);
      return;
    }
    document.title = payload.title || "netxray report";
    var nav = el("nav", { class: "nx-nav", "aria-label": "sections" }, [
      el("div", { class: "nx-brand" }, [el("span", { class: "nx-logo", "aria-hidden": "true" }), "netxray"]),
    ]);
    var main = el("main", { class: "nx-main" }, [header(payload)]);
    var links = {};
    payload.sections.forEach(function (sec, si) {
      var sid = "s-" + sec.id;
      var charts = sec.charts || [];
      var a = el("a", { href: "#" + sid, class: "nx-nav-link" }, [
        el("span", { text: sec.title }), el("span", { class: "nx-count", text: String(charts.length) }),
      ]);
      links[sid] = a;
      nav.appendChild(a);
      var grid = el("div", { class: "nx-grid" });
      var section = el("section", { id: sid, class: "nx-section" }, [
        el("h2", { text: sec.title }),
        sec.description ? el("p", { class: "nx-section-desc", text: sec.description }) : null,
        charts.length ? grid : el("p", { class: "nx-note nx-empty-section", text: "Nothing to show here yet." }),
      ]);
      charts.forEach(function (spec, ci) {
        var key = sec.id + "/" + ci + "/" + (spec && spec.kind);
        var st = STATE[key] = STATE[key] || {};
        var body = el("div", { class: "nx-body" });
        var kind = spec && spec.kind;
        var card = el("figure", { class: "nx-card nx-kind-" + kind + (WIDE[kind] || (spec && spec.wide) ? " nx-wide" : ""),
                                  "data-kind": String(kind), "data-chart": key }, [
          el("figcaption", null, [
            el("h3", { text: (spec && spec.title) || "" }),
            spec && spec.description ? el("p", { class: "nx-desc", text: spec.description }) : null,
          ]),
          body,
        ]);
        grid.appendChild(card);
        CARDS.push({ el: card, body: body, spec: spec, state: st });
      });
      main.appendChild(section);
    });
    root.replaceChildren(el("div", { class: "nx-layout" }, [nav, main]));
    CARDS.forEach(drawCard);
    // highlight the section in view
    if (window.IntersectionObserver) {
      var io = new IntersectionObserver(function (entries) {
        entries.forEach(function (en) {
          if (!en.isIntersecting) return;
          Object.keys(links).forEach(function (k) { links[k].classList.toggle("nx-active", k === en.target.id); });
        });
      }, { rootMargin: "-10% 0px -75% 0px" });
      main.querySelectorAll(".nx-section").forEach(function (s) { io.observe(s); });
    }
    var first = payload.sections[0];
    if (first && links["s-" + first.id]) links["s-" + first.id].classList.add("nx-active");
    window.scrollTo(0, scroll);
    lastWidth = main.clientWidth;
  }

  // redraw charts when the width changes (debounced)
  var lastWidth = 0, resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      var main = document.querySelector(".nx-main");
      if (!main || main.clientWidth === lastWidth) return;
      lastWidth = main.clientWidth;
      CARDS.forEach(drawCard);
    }, 150);
  });

  function readEmbedded() {
    var node = document.getElementById("netxray-data");
    if (!node) return null;
    var text = node.textContent.trim();
    return { node: node, payload: text ? JSON.parse(text) : null, text: text };
  }

  function start() {
    var emb = null;
    try {
      emb = readEmbedded();
      if (emb && emb.payload) render(emb.payload);
    } catch (err) {
      console.error("netxray: could not read the embedded data:", err);
      var root = document.getElementById("nx-root");
      if (root) root.replaceChildren(el("div", { class: "nx-error nx-page-error", text: "netxray: the embedded data could not be read: " + err.message }));
    }
    // live mode (netxray serve): poll the same JSON and redraw when it changes
    var url = emb && emb.node.getAttribute("data-live-url");
    if (url) {
      var last = emb.text, ms = +emb.node.getAttribute("data-poll-ms") || 2000;
      var busy = false;
      var poll = function () {
        if (busy) return;
        busy = true;
        fetch(url, { cache: "no-store" }).then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        }).then(function (text) {
          if (text !== last) { last = text; render(JSON.parse(text)); }
          document.documentElement.removeAttribute("data-live-error");
        }).catch(function (err) {
          document.documentElement.setAttribute("data-live-error", String(err && err.message || err));
        }).then(function () { busy = false; });
      };
      setInterval(poll, ms);
      poll();
    }
  }

  window.netxrayRender = render;
  window.netxray = { render: render, version: "1", kinds: Object.keys(RENDERERS),
                     payload: function () { return current; } };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
