/* netxray front-end, part 3 of 4: tiles and panels (thumbnails, images, bars, table,
 * findings) and the slider over frames of another kind; see core.js.
 */

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
  var lc = typeof spec.link === "string" ? spec.link_column : undefined;   // charts-link.js
  var tbody = el("tbody", null, rows.map(function (r) {
    var tr = el("tr", lc === undefined ? null : { "data-sample": String(r[lc]) }, r.map(function (v, j) {
      return el("td", { class: numeric[j] ? "nx-num" : null, text: fmt(v) });
    }));
    if (lc !== undefined) {
      tr.addEventListener("mouseenter", function () { linkHover(spec.link, r[lc], st); });
      tr.addEventListener("mouseleave", function () { linkHover(spec.link, null, st); });
    }
    return tr;
  }));
  if (lc !== undefined) {
    linkListen(spec.link, st, function (idx) {
      var hit = null;
      tbody.querySelectorAll("tr[data-sample]").forEach(function (tr) {
        var on = idx !== null && tr.getAttribute("data-sample") === String(idx);
        tr.classList.toggle("nx-linked", on);
        if (on) hit = tr;
      });
      linkMark(body, spec.link, hit ? idx : null);
    });
  }
  if (!rows.length) {
    tbody.appendChild(el("tr", null, [el("td", { colspan: String(spec.columns.length), class: "nx-empty", text: "no rows" })]));
  }
  body.appendChild(el("div", { class: "nx-table-wrap" }, [el("table", { class: "nx-table" }, [el("thead", null, [head]), tbody])]));
}

// ------------------------------------------------------------------ tokens
// sentences as text, each token's background shaded by its score on the row's own
// symmetric scale; tokens are user text and go in through textContent only
function renderTokens(spec, body) {
  var wrap = el("div", { class: "nx-tokens" });
  spec.rows.forEach(function (toks, i) {
    var row = spec.scores[i] || [], m = 0;
    toks.forEach(function (_, j) { var v = row[j]; if (v !== null && Math.abs(v) > m) m = Math.abs(v); });
    var spans = toks.map(function (t, j) {
      var v = row[j] === undefined ? null : row[j];
      var c = v === null ? MISSING : diverging(m > 0 ? v / m : 0);
      var dark = v !== null && m > 0 && Math.abs(v / m) > 0.6;
      return el("span", { class: "nx-tok" + (dark ? " nx-tok-dark" : ""), text: t, title: "score " + fmt(v),
                          "data-score": v === null ? "" : String(v), style: "background:" + rgbStr(c) });
    });
    wrap.appendChild(el("div", { class: "nx-tok-row" }, [
      spec.row_labels ? el("div", { class: "nx-tok-label", text: spec.row_labels[i] }) : null,
      el("div", { class: "nx-tok-text" }, spans),
    ]));
  });
  body.appendChild(wrap);
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
