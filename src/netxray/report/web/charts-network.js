/* netxray front-end: the "network" chart, a network drawn as a diagram (TensorFlow
 * Playground's): columns of units, input features first, each unit a thumbnail of its
 * response over the input plane; links with width |weight| and colour by sign (blue
 * positive, orange negative). Dead units are greyed, saturated units outlined in red.
 * Spec: netxray/report/network_chart.py. Shares core.js's helpers (concatenated scope).
 */

function renderNetwork(spec, body, st, opts) {
  var layers = spec.layers, links = spec.links, n = layers.length;
  var most = Math.max.apply(null, layers.map(function (l) { return l.maps.length; }));
  var W = opts.width, top = 22, gap = 6;
  var s = Math.max(18, Math.min(44, Math.floor((W - 40) / (n * 2.6)), Math.floor(560 / most) - gap));
  var H = top + most * (s + gap) + 4;
  var colX = function (i) { return n === 1 ? W / 2 - s / 2 : 10 + i * (W - 20 - s) / (n - 1); };
  var pos = layers.map(function (l, i) {
    var u = l.maps.length, y0 = top + (most - u) * (s + gap) / 2;
    return l.maps.map(function (_, k) { return { x: colX(i), y: y0 + k * (s + gap) }; });
  });
  var nDead = 0, nSat = 0;
  layers.forEach(function (l) {
    l.dead.forEach(function (d) { if (d) nDead++; });
    l.saturated.forEach(function (d) { if (d) nSat++; });
  });
  body.appendChild(el("div", { class: "nx-controls" }, [
    colorbar(colorScale("diverging", -1, 1), 100, ["\u2212", "+"]),
    el("span", { class: "nx-note", text: "links: width |weight|, blue +, orange \u2212" }),
    nDead ? el("span", { class: "nx-note nx-note-bad nx-net-dead", text: nDead + " dead (greyed)" }) : null,
    nSat ? el("span", { class: "nx-note nx-note-bad nx-net-sat", text: nSat + " saturated (red outline)" }) : null,
  ]));
  body.setAttribute("data-dead", String(nDead));
  body.setAttribute("data-saturated", String(nSat));
  var area = plotArea(body, W, H), ctx = area.ctx;
  // links, under the units
  var wmax = 0;
  links.forEach(function (m) { m.forEach(function (r) { r.forEach(function (v) { if (v !== null) wmax = Math.max(wmax, Math.abs(v)); }); }); });
  wmax = wmax || 1;
  links.forEach(function (m, i) {
    m.forEach(function (row, o) {
      row.forEach(function (v, k) {
        if (v === null) return;
        var a = pos[i][k], b = pos[i + 1][o], t = Math.abs(v) / wmax;
        ctx.strokeStyle = rgbStr(v >= 0 ? POS : NEG, 0.15 + 0.75 * t);
        ctx.lineWidth = 0.4 + 4.5 * t;
        ctx.beginPath();
        ctx.moveTo(a.x + s, a.y + s / 2);
        ctx.bezierCurveTo(a.x + s + 30, a.y + s / 2, b.x - 30, b.y + s / 2, b.x, b.y + s / 2);
        ctx.stroke();
      });
    });
  });
  // units
  setFont(ctx, 11, 600);
  ctx.textAlign = "center";
  var ranges = [];
  layers.forEach(function (l, i) {
    ctx.fillStyle = INK;
    ctx.fillText(l.name, colX(i) + s / 2, 9);
    ranges.push(l.maps.map(function (m, k) {
      var r = finiteRange(m) || [0, 0], top = Math.max(Math.abs(r[0]), Math.abs(r[1])) || 1;
      var p = pos[i][k], dead = l.dead[k];
      drawCells(ctx_at(ctx, p, s), m, s, function (v) {
        if (v === null) return MISSING;
        var c = diverging(v / top);
        if (!dead) return c;
        var g = 0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2];   // greyed: luminance, washed out
        return [g * 0.35 + 150, g * 0.35 + 150, g * 0.35 + 150];
      }, true, true);
      ctx.restore();
      ctx.lineWidth = l.saturated[k] ? 2.5 : 1;
      ctx.strokeStyle = l.saturated[k] ? "#d92d20" : dead ? "#9aa1ab" : AXIS;
      ctx.strokeRect(p.x, p.y, s, s);
      if (dead) {
        ctx.strokeStyle = "#6b7280"; ctx.lineWidth = 1;
        ctx.beginPath(); ctx.moveTo(p.x + 3, p.y + 3); ctx.lineTo(p.x + s - 3, p.y + s - 3); ctx.stroke();
      }
      return top;
    }));
  });
  ctx.textAlign = "start";
  area.on(function (e, x, y) {
    for (var i = 0; i < n; i++) {
      for (var k = 0; k < pos[i].length; k++) {
        var p = pos[i][k];
        if (x >= p.x && x <= p.x + s && y >= p.y && y <= p.y + s) {
          var l = layers[i], rows = [{ label: "max |response|", value: fmt(ranges[i][k]), strong: true }];
          if (spec.extent) {
            var fx = (x - p.x) / s, fy = (y - p.y) / s, ex = spec.extent;
            rows.push({ label: "at", value: "(" + fmt(ex[0] + (ex[1] - ex[0]) * fx) + ", " + fmt(ex[3] - (ex[3] - ex[2]) * fy) + ")" });
          }
          if (i > 0) {
            var w = links[i - 1][k], big = 0;
            if (w) w.forEach(function (v) { if (v !== null) big = Math.max(big, Math.abs(v)); });
            rows.push({ label: "largest |incoming weight|", value: fmt(big) });
          }
          if (l.dead[k]) rows.push({ color: "#9aa1ab", label: "dead: never active on the training data", value: "" });
          if (l.saturated[k]) rows.push({ color: "#d92d20", label: "saturated on most inputs", value: "" });
          showTip(e, l.labels[k], rows);
          return;
        }
      }
    }
    hideTip();
  });
}

// a context translated to p, clipped to the s x s cell (the caller restores it)
function ctx_at(ctx, p, s) {
  ctx.save();
  ctx.beginPath(); ctx.rect(p.x, p.y, s, s); ctx.clip();
  ctx.translate(p.x, p.y);
  return ctx;
}
