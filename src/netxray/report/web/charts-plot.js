/* netxray front-end, part 2 of 4: charts on x/y axes (lines, heatmap, surface, scatter).
 * Each render<Kind>(spec, body, state, opts) draws one chart spec into body; see core.js.
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

// ------------------------------------------------------------------ surface
// the level-0 line of F (ny x nx, F[j][i] at (xs[i], ys[j]), a regular grid) by d3-contour.
// The grid is padded by a copy of its edge, so the rings d3 closes along the border fall
// outside the plot (clipped) and only the level line itself shows.
function contour(ctx, F, sx, sy, xs, ys) {
  var ny = F.length, nx = F[0].length, w = nx + 2, h = ny + 2, vals = new Float64Array(w * h);
  for (var j = 0; j < h; j++) {
    var row = F[Math.min(ny - 1, Math.max(0, j - 1))];
    for (var i = 0; i < w; i++) {
      var v = row[Math.min(nx - 1, Math.max(0, i - 1))];
      vals[j * w + i] = v === null ? NaN : v;
    }
  }
  // d3 puts value (i, j) of the padded grid at (i + 0.5, j + 0.5): grid point (i - 1, j - 1)
  var dx = (xs[nx - 1] - xs[0]) / (nx - 1), dy = (ys[ny - 1] - ys[0]) / (ny - 1);
  var geo = d3.contours().size([w, h]).thresholds([0])(vals)[0];
  ctx.beginPath();
  geo.coordinates.forEach(function (polygon) {
    polygon.forEach(function (ring) {
      ring.forEach(function (p, k) {
        var x = sx(xs[0] + (p[0] - 1.5) * dx), y = sy(ys[0] + (p[1] - 1.5) * dy);
        if (k) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      });
    });
  });
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
  var links = spec.link || {}, hovered = null;   // marker -> sample set (charts-link.js)
  Object.keys(links).forEach(function (m) {
    linkListen(links[m], st, function (idx) {
      P.clearOverlay();
      var hit = idx === null ? [] : spec.points.filter(function (p) { return p.marker === m && p.index === idx; });
      hit.forEach(function (p) { linkRing(P.octx, sx(p.x), sy(p.y), rad); });
      linkMark(P.wrap, links[m], hit.length ? idx : null);
    });
  });
  var hover = function (p) {   // tell the charts linked to this point's set
    var set = p && links[p.marker], key = set ? set + ":" + p.index : null;
    if (key === hovered) return;
    if (hovered) linkHover(hovered.slice(0, hovered.lastIndexOf(":")), null, st);
    hovered = key;
    if (set && p.index !== undefined) linkHover(set, p.index, st);
  };
  P.on(function (e, mx, my) {
    P.clearOverlay();
    if (mx < f.l || mx > f.l + f.w || my < f.t || my > f.t + f.h) { hideTip(); hover(null); return; }
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
    hover(best >= 0 ? spec.points[best] : null);
    showTip(e, title, rows);
  }, function () { hover(null); });
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
