/* netxray front-end, the last part: the renderer registry, the page (nav, sections, cards),
 * redraws, the embedded payload and live mode; see core.js.
 */

var RENDERERS = {
  lines: renderLines, heatmap: renderHeatmap, surface: renderSurface, scatter: renderScatter,
  thumbnails: renderThumbnails, bars: renderBars, table: renderTable, findings: renderFindings,
  images: renderImages, slider: renderSlider, tokens: renderTokens, network: renderNetwork,
  controls: renderControls,
};
var WIDE = { heatmap: 1, thumbnails: 1, images: 1, table: 1, findings: 1, tokens: 1, network: 1, controls: 1 };

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
  linkReset();
  current = payload;
  payload = unpackPayload(payload);
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
      var key = spec && spec.id ? "id/" + spec.id : sec.id + "/" + ci + "/" + (spec && spec.kind);
      var st = STATE[key] = STATE[key] || {};
      var body = el("div", { class: "nx-body" });
      var kind = spec && spec.kind;
      var card = el("figure", { class: "nx-card nx-kind-" + kind + (WIDE[kind] || (spec && spec.wide) ? " nx-wide" : ""),
                                "data-kind": String(kind), "data-chart": key,
                                "data-chart-id": spec && spec.id ? String(spec.id) : null }, [
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
    var busy = false, timer = null, root = document.documentElement;
    var poll = function () {
      if (busy) return;
      busy = true;
      fetch(url, { cache: "no-store" }).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      }).then(function (text) {
        var p = null;
        if (text !== last) { last = text; p = JSON.parse(text); render(p); }
        root.removeAttribute("data-live-error");
        root.setAttribute("data-live-polls", String(+(root.getAttribute("data-live-polls") || 0) + 1));
        // a payload with "done": true will not change again (a closed run): stop polling
        if (p && p.done === true) { clearInterval(timer); root.setAttribute("data-live", "done"); }
      }).catch(function (err) {
        root.setAttribute("data-live-error", String(err && err.message || err));
      }).then(function () { busy = false; });
    };
    root.setAttribute("data-live", "polling");
    timer = setInterval(poll, ms);
    poll();
  }
}

// Redraw the one chart whose spec carries this id with a new spec (packed arrays allowed),
// in place: its card, position and UI state (selected colouring, slider frame) stay.
// Returns false when no chart has that id. The live playground sends one patch per chart.
function patch(chartId, spec) {
  var card = null;
  for (var i = 0; i < CARDS.length; i++) {
    if (CARDS[i].spec && CARDS[i].spec.id === chartId) { card = CARDS[i]; break; }
  }
  if (!card) return false;
  spec = unpackPayload(spec);
  spec.id = chartId;
  card.spec = spec;
  var cap = card.el.querySelector("figcaption h3");
  if (cap) cap.textContent = spec.title || "";
  var desc = card.el.querySelector("figcaption .nx-desc");
  if (desc) desc.textContent = spec.description || "";
  var hScroll = card.body.scrollLeft;
  card.body.style.minHeight = card.body.offsetHeight + "px";   // no jump while it redraws
  drawCard(card);
  card.body.style.minHeight = "";
  card.body.scrollLeft = hScroll;
  return true;
}

window.netxrayRender = render;
window.netxray = { render: render, patch: patch, onInput: onInput, version: "1", kinds: Object.keys(RENDERERS),
                   payload: function () { return current; } };
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
