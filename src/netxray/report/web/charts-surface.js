/* netxray front-end, an addition to part 2: the decision surface (TensorFlow Playground's
 * output picture), its boundary line (d3-contour), static arrows, linked points, and the
 * hover arrow of a gradient field (spec.gradient: netxray/report/plane_charts.py).
 */

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
  if (spec.gradient) legend.push({ marker: "arrow", label: "hover: " + spec.gradient.label });
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
  var arrowAt = spec.gradient ? gradientArrow(spec.gradient, f, sx, sy, P) : null;
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
    if (mx < f.l || mx > f.l + f.w || my < f.t || my > f.t + f.h) {
      hideTip(); hover(null); if (arrowAt) arrowAt(null);
      return;
    }
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
    if (arrowAt) rows = rows.concat(arrowAt(mx, my));
    showTip(e, title, rows);
  }, function () { hover(null); if (arrowAt) arrowAt(null); });
}

// The hover arrow of a gradient field G = {x, y, dx, dy, label} on the overlay of plot P:
// arrowAt(mx, my) draws, from the cursor, the vector of the grid point nearest to it (no
// interpolation: across a boundary the predicted class, so the field, changes abruptly), to
// scale with the field's longest vector (drawn at 18% of the plot's width), and returns the
// tooltip rows; arrowAt(null) forgets it. The wrap's data-arrow holds "x y dx dy" of the
// grid point shown (for tests and tools), removed when the mouse leaves.
function gradientArrow(G, f, sx, sy, P) {
  var gx = G.x, gy = G.y, kx = sx(1) - sx(0), ky = sy(1) - sy(0), top = 0, most = 0;
  for (var j = 0; j < gy.length; j++) {
    for (var i = 0; i < gx.length; i++) {
      top = Math.max(top, Math.hypot(G.dx[j][i] * kx, G.dy[j][i] * ky));   // in pixels
      most = Math.max(most, Math.hypot(G.dx[j][i], G.dy[j][i]));
    }
  }
  var scale = top > 0 ? (f.w * 0.18) / top : 0;
  var nearest = function (axis, v) {
    var b = 0;
    for (var i = 1; i < axis.length; i++) if (Math.abs(axis[i] - v) < Math.abs(axis[b] - v)) b = i;
    return b;
  };
  return function (mx, my) {
    if (mx === null) { P.wrap.removeAttribute("data-arrow"); return []; }
    var i = nearest(gx, sx.invert(mx)), j = nearest(gy, sy.invert(my));
    var vx = G.dx[j][i], vy = G.dy[j][i];
    var ux = vx * kx * scale, uy = vy * ky * scale, len = Math.hypot(ux, uy), o = P.octx;
    P.wrap.setAttribute("data-arrow", [gx[i], gy[j], vx, vy].join(" "));
    if (len >= 1) {
      var x1 = mx + ux, y1 = my + uy, ang = Math.atan2(uy, ux), hl = Math.min(8, len * 0.45);
      [["#ffffff", 4.5], [INK, 2]].forEach(function (pen) {   // a white halo, then the arrow
        o.strokeStyle = pen[0]; o.fillStyle = pen[0]; o.lineWidth = pen[1];
        o.lineCap = "round"; o.lineJoin = "round";
        o.beginPath(); o.moveTo(mx, my); o.lineTo(x1, y1); o.stroke();
        o.beginPath(); o.moveTo(x1, y1);
        o.lineTo(x1 - hl * Math.cos(ang - 0.45), y1 - hl * Math.sin(ang - 0.45));
        o.lineTo(x1 - hl * Math.cos(ang + 0.45), y1 - hl * Math.sin(ang + 0.45));
        o.closePath(); o.fill(); o.stroke();
      });
    }
    o.fillStyle = INK;
    o.beginPath(); o.arc(mx, my, 2.5, 0, 2 * Math.PI); o.fill();
    return [{ label: G.label, value: "(" + fmt(vx) + ", " + fmt(vy) + ")", strong: true },
            { label: "|gradient|", value: fmt(Math.hypot(vx, vy)) + " (largest " + fmt(most) + ")" }];
  };
}
