/* netxray front-end, an addition to parts 2 and 3: linked highlighting between charts.
 *
 * Charts that show the same samples name them (netxray/report/chart_spec.py, docs/report.md):
 * a scatter's spec.link is a sample set ("train") and spec.index the sample of each point; a
 * surface's spec.link maps a point's marker to a set ({"train": "train", "test": "test"}), each
 * point carrying its "index"; a table's spec.link is a set and spec.link_column the column of
 * sample indices. Hovering sample i of set S in one chart calls every other chart listening
 * on S to light up its sample i (null: nothing); the chart marks its plot data-linked="S:i".
 */

var LINKS = {};   // set -> [{st, show}]; emptied by each page render

function linkReset() { LINKS = {}; }

// chart state st shows set's samples: show(i) lights sample i up (null: none); a chart
// drawn again (resize, slider frame) replaces its listener instead of adding one
function linkListen(set, st, show) {
  if (typeof set !== "string" || !set) return;
  var list = (LINKS[set] || []).filter(function (l) { return l.st !== st; });
  list.push({ st: st, show: show });
  LINKS[set] = list;
}

// the chart st hovers sample i of set (null: it left); every other listener follows
function linkHover(set, i, st) {
  if (typeof set !== "string" || !set) return;
  (LINKS[set] || []).forEach(function (l) {
    if (l.st === st) return;
    try { l.show(i); } catch (err) { console.error("netxray: a linked chart failed:", err); }
  });
}

function linkMark(node, set, i) {
  if (i === null || i === undefined) node.removeAttribute("data-linked");
  else node.setAttribute("data-linked", set + ":" + i);
}

// a ring on an overlay at (x, y): the mark of a sample lit up from another chart
function linkRing(octx, x, y, r) {
  octx.save();
  octx.lineWidth = 3; octx.strokeStyle = "#ffffff";
  octx.beginPath(); octx.arc(x, y, r + 4, 0, 2 * Math.PI); octx.stroke();
  octx.lineWidth = 2; octx.strokeStyle = "#e0342b";
  octx.beginPath(); octx.arc(x, y, r + 4, 0, 2 * Math.PI); octx.stroke();
  octx.restore();
}
