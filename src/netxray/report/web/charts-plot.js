/* netxray front-end, part 2 of 4: charts on x/y axes (lines, heatmap, scatter; the surface
 * is in charts-surface.js). Each render<Kind>(spec, body, state, opts) draws one chart spec
 * into body; see core.js.
 */

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
  var markerRows = spec.markers ? lineMarkers(spec, ctx, f, sx) : null;  // charts-markers.js
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
    if (markerRows) rows = rows.concat(markerRows(spec.x[best]));
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
  var zoomed = el("button", { type: "button", class: "nx-reset", text: "reset zoom",
                              title: "scroll to zoom, drag to pan; double-click also resets" });
  bar.appendChild(zoomed);
  body.appendChild(bar);
  var W = opts.width, H = Math.round(Math.max(260, Math.min(440, W * 0.72)));
  var P = plotArea(body, W, H), ctx = P.ctx;
  var f = { l: 52, t: 10, w: W - 52 - 14, h: H - 10 - (spec.xlabel ? 42 : 28) };
  var xr = opts.domain && opts.domain.x ? opts.domain.x : pad(finiteRange([spec.x]), 0.05);
  var yr = opts.domain && opts.domain.y ? opts.domain.y : pad(finiteRange([spec.y]), 0.05);
  var x0 = linear(xr[0], xr[1], f.l, f.l + f.w), y0 = linear(yr[0], yr[1], f.t + f.h, f.t);
  var rad = n > 3000 ? 2 : n > 600 ? 2.8 : n > 150 ? 3.6 : 4.5;
  var px = new Float64Array(n), py = new Float64Array(n);
  var paint = function (t) {   // axes and points under the zoom transform t (d3-zoom)
    ctx.clearRect(0, 0, W, H);
    var dx = [x0.invert(t.invertX(f.l)), x0.invert(t.invertX(f.l + f.w))];
    var dy = [y0.invert(t.invertY(f.t + f.h)), y0.invert(t.invertY(f.t))];
    var sx = linear(dx[0], dx[1], f.l, f.l + f.w), sy = linear(dy[0], dy[1], f.t + f.h, f.t);
    drawAxes(ctx, f, sx, sy, {
      xticks: linTicks(dx[0], dx[1], Math.max(3, Math.round(f.w / 80))),
      yticks: linTicks(dy[0], dy[1], Math.max(3, Math.round(f.h / 55))),
      xlabel: spec.xlabel, ylabel: spec.ylabel,
    });
    ctx.save(); ctx.beginPath(); ctx.rect(f.l, f.t, f.w, f.h); ctx.clip();
    ctx.globalAlpha = n > 600 ? 0.75 : 0.9;
    for (var i = 0; i < n; i++) {
      px[i] = sx(spec.x[i]); py[i] = sy(spec.y[i]);
      ctx.beginPath(); ctx.arc(px[i], py[i], rad, 0, 2 * Math.PI);
      ctx.fillStyle = colorOf(i); ctx.fill();
      if (n <= 600) { ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.lineWidth = 0.8; ctx.stroke(); }
    }
    ctx.restore();
    P.wrap.setAttribute("data-zoom", [t.k, t.x, t.y].map(function (v) { return +v.toFixed(3); }).join(" "));
    zoomed.disabled = t.k === 1 && t.x === 0 && t.y === 0;
  };
  var frame = [[f.l, f.t], [f.l + f.w, f.t + f.h]];
  var zoom = d3.zoom().scaleExtent([1, 50]).extent(frame).translateExtent(frame)
    .filter(function (e) { return (!e.ctrlKey || e.type === "wheel") && !e.button && e.type !== "dblclick"; })
    .on("zoom", function (e) { st.zoom = e.transform; paint(e.transform); P.clearOverlay(); hideTip(); });
  var zsel = d3.select(P.wrap).call(zoom);
  P.wrap.classList.add("nx-zoomable");
  var reset = function () { zsel.call(zoom.transform, d3.zoomIdentity); };
  P.wrap.addEventListener("dblclick", reset);
  zoomed.addEventListener("click", reset);
  var t0 = st.zoom || d3.zoomIdentity;   // kept across redraws (live updates, resizes)
  zsel.call(zoom.transform, d3.zoomIdentity.translate(t0.x, t0.y).scale(t0.k));
  // linked highlighting (charts-link.js): point i is sample index[i] of the set spec.link
  var index = spec.index || null, where = {}, hovered = null;
  for (var q = 0; q < n; q++) where[index ? index[q] : q] = q;
  linkListen(spec.link, st, function (idx) {
    P.clearOverlay();
    var i = idx === null ? undefined : where[idx];
    if (i !== undefined) linkRing(P.octx, px[i], py[i], rad);
    linkMark(P.wrap, spec.link, i === undefined ? null : idx);
  });
  var hover = function (i) {
    var idx = i === null ? null : index ? index[i] : i;
    if (idx === hovered) return;
    hovered = idx;
    linkHover(spec.link, idx, st);
  };
  P.wrap.nxPoint = function (i) { return { x: px[i], y: py[i] }; };
  P.on(function (e, mx, my) {
    P.clearOverlay();
    var best = -1, bd = 100;
    for (var i = 0; i < n; i++) {
      if (px[i] < f.l || px[i] > f.l + f.w || py[i] < f.t || py[i] > f.t + f.h) continue;
      var d = (px[i] - mx) * (px[i] - mx) + (py[i] - my) * (py[i] - my);
      if (d < bd) { bd = d; best = i; }
    }
    hover(best < 0 ? null : best);
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
    showTip(e, (spec.link ? spec.link + " sample #" : "point #") + (index ? index[best] : best), rows);
  }, function () { hover(null); });
}
