/* netxray front-end, an addition to part 2: vertical markers on a line chart, e.g. the alarms
 * of a watched run on its loss curve (netxray/report/training.py: with_markers).
 *
 * A lines spec may carry "markers": [{x, severity, text}]. renderLines calls lineMarkers
 * after drawing its series; it draws one vertical line per marker (coloured by severity,
 * "ok" for a cleared alarm in grey, dashed) and returns the tooltip rows of the markers at
 * or nearest a hovered x, so hovering the line shows the alarms' text.
 */

var MARKER_COLORS = { critical: "#b42318", error: "#d92d20", warning: "#dc8a06",
                      info: "#0877bd", ok: "#9aa1ab" };

function lineMarkers(spec, ctx, f, sx) {
  var marks = spec.markers || [];
  if (!marks.length) return null;
  ctx.save();
  ctx.beginPath(); ctx.rect(f.l, f.t - 2, f.w + 2, f.h + 4); ctx.clip();
  marks.forEach(function (m) {
    var px = Math.round(sx(m.x)) + 0.5;
    var col = MARKER_COLORS[m.severity] || MARKER_COLORS.info;
    ctx.strokeStyle = col; ctx.lineWidth = m.severity === "ok" ? 1 : 1.5;
    ctx.setLineDash(m.severity === "ok" ? [3, 3] : []);
    ctx.beginPath(); ctx.moveTo(px, f.t); ctx.lineTo(px, f.t + f.h); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = col;   // a small flag at the top
    ctx.beginPath(); ctx.moveTo(px, f.t); ctx.lineTo(px + 6, f.t + 3.5); ctx.lineTo(px, f.t + 7);
    ctx.closePath(); ctx.fill();
  });
  ctx.restore();
  // spacing of the x positions: a marker within half of it of the hovered x is listed
  var xs = spec.x, half = xs.length > 1 ? Math.abs(xs[xs.length - 1] - xs[0]) / (xs.length - 1) / 2 : 0.5;
  return function rows(x) {
    return marks.filter(function (m) { return Math.abs(m.x - x) <= half; }).map(function (m) {
      return { color: MARKER_COLORS[m.severity] || MARKER_COLORS.info,
               label: "step " + fmt(m.x), value: m.text };
    });
  };
}
