/* netxray playground: the stream of frames, the counters, the URL state (netxray serve).
 *
 * Runs after the report's front-end (window.netxray.render / .patch / .onInput). It opens the
 * stream api/play/stream?<the URL's #state> (server-sent events read with fetch, so an
 * error's message can be shown), draws the first page, then patches one chart per message.
 * The controls are a chart of the page (kind "controls", id "controls", sent by the server);
 * their input arrives through window.netxray.onInput and goes back with a POST to
 * api/play/<session>/control (or upload, save). The URL's # part always holds the setup, so
 * copying the address shares it. Text from the server goes in through textContent only.
 */
(function () {
  "use strict";
  var NX = window.netxray;
  var S = { sid: null, query: "", playing: false, frames: [], abort: null, controls: null };
  var CONTROLS = "controls", PLAY = "\u25b6 play", PAUSE = "\u275a\u275a pause";  // as serve/controls.py
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : v);
    });
    (kids || []).forEach(function (c) { if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function parse(query) {
    var out = {}, order = [];
    new URLSearchParams(query).forEach(function (v, k) { out[k] = v; order.push(k); });
    out.__order = order;
    return out;
  }
  function build(params) {
    return params.__order.map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]).replace(/%2C/g, ",").replace(/%5E/g, "^");
    }).join("&");
  }
  function status(text, bad) {
    var s = document.getElementById("nx-pg-status");
    s.textContent = text || "";
    s.classList.toggle("nx-pg-bad", !!bad);
    if (bad) document.documentElement.setAttribute("data-play-error", text);
    else document.documentElement.removeAttribute("data-play-error");
  }
  function num(v) {
    if (v === null || v === undefined) return "\u2014";
    return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : v.toFixed(3);
  }

  // ------------------------------------------------------------------ talking to the server
  function post(path, body, raw) {
    return fetch(path, {
      method: "POST", body: raw ? body : JSON.stringify(body),
      headers: raw ? { "Content-Type": "text/csv" } : { "Content-Type": "application/json" },
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error(j.detail || ("HTTP " + r.status));
        return j;
      });
    });
  }
  function control(body) {
    if (!S.sid) return Promise.resolve(null);
    return post("api/play/" + S.sid + "/control", body).then(function (j) {
      status("");
      if (j && j.query && j.query !== S.query) {   // e.g. "discretize": no new page comes
        S.query = j.query;
        history.replaceState(null, "", "#" + j.query);
      }
      return j;
    }).catch(function (err) { status(String(err.message || err), true); });
  }
  function setConfig(key, value) {
    var p = parse(S.query);
    if (!(key in p)) p.__order.push(key);
    p[key] = value;
    if (key !== "preset") p.preset = "";
    control({ action: "config", query: build(p) });
  }
  function connect() {
    var q = location.hash.replace(/^#/, "");
    S.abort = new AbortController();
    fetch("api/play/stream" + (q ? "?" + q : ""), { signal: S.abort.signal, cache: "no-store" }).then(function (r) {
      if (!r.ok) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          throw new Error(j.detail || ("HTTP " + r.status));
        });
      }
      var reader = r.body.getReader(), dec = new TextDecoder(), buf = "";
      var pump = function () {
        return reader.read().then(function (res) {
          if (res.done) { status("The server closed the stream; reload the page to start again.", true); return; }
          buf += dec.decode(res.value, { stream: true });
          var cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            var block = buf.slice(0, cut); buf = buf.slice(cut + 2);
            var data = block.split("\n").filter(function (l) { return l.slice(0, 5) === "data:"; })
              .map(function (l) { return l.slice(5).replace(/^ /, ""); }).join("\n");
            if (data) handle(JSON.parse(data));
          }
          return pump();
        });
      };
      return pump();
    }).catch(function (err) {
      if (err && err.name === "AbortError") return;
      status("Could not start the playground: " + String(err.message || err), true);
    });
  }
  window.addEventListener("pagehide", function () { if (S.abort) S.abort.abort(); });

  function counters(m) {
    document.getElementById("nx-epoch").textContent = String(m.epoch);
    document.getElementById("nx-train-loss").textContent = num(m.train_loss);
    document.getElementById("nx-test-loss").textContent = num(m.test_loss);
    document.documentElement.setAttribute("data-epoch", String(m.epoch));
  }
  function handle(m) {
    if (m.type === "hello" || m.type === "render") {
      S.sid = m.session;
      S.query = m.query;
      S.playing = !!m.playing;
      document.documentElement.setAttribute("data-playing", S.playing ? "1" : "0");
      history.replaceState(null, "", "#" + m.query);
      S.controls = null;
      m.payload.sections.forEach(function (sec) {
        sec.charts.forEach(function (c) { if (c.id === CONTROLS) S.controls = c; });
      });
      NX.render(m.payload);
      counters(m);
      document.documentElement.setAttribute("data-session", m.session);
      document.documentElement.setAttribute("data-query", m.query);
      return;
    }
    if (m.type === "frame") {
      Object.keys(m.patches).forEach(function (id) {
        if (!NX.patch(id, m.patches[id])) console.warn("netxray playground: no chart " + id);
      });
      counters(m);
      var now = performance.now();
      S.frames.push(now);
      while (S.frames.length && now - S.frames[0] > 2000) S.frames.shift();
      var fps = S.frames.length > 1 ? (S.frames.length - 1) * 1000 / (now - S.frames[0]) : 0;
      document.getElementById("nx-fps").textContent = fps ? fps.toFixed(1) + " frames/s" : "";
      var dead = document.getElementById("nx-dead");
      dead.textContent = (m.dead ? m.dead + " dead" : "") + (m.dead && m.saturated ? ", " : "") +
                         (m.saturated ? m.saturated + " saturated" : "");
    }
  }

  // ------------------------------------------------------------------ the controls
  // The form is the server's controls chart (netxray/serve/controls.py), drawn by the report's
  // renderer; its keys are the URL state's keys, plus the actions below.
  function setPlaying(on) {
    S.playing = on;
    document.documentElement.setAttribute("data-playing", on ? "1" : "0");
    if (!S.controls) return;
    S.controls = Object.assign({}, S.controls, { controls: S.controls.controls.map(function (c) {
      return c.key === "play" ? Object.assign({}, c, { label: on ? PAUSE : PLAY }) : c;
    }) });
    NX.patch(CONTROLS, S.controls);
  }
  function features(name, on) {
    var now = (parse(S.query).feat || "").split(",");
    return S.controls.controls.filter(function (c) { return c.key.slice(0, 5) === "feat."; })
      .map(function (c) { return c.key.slice(5); })
      .filter(function (f) { return f === name ? on : now.indexOf(f) >= 0; }).join(",");
  }
  function save() {
    status("Saving: training it again under netxray.watch\u2026");
    post("api/play/save", { session: S.sid }).then(function (j) {
      status("Saved as " + j.run + " (" + j.epochs + " epochs); the report downloads.");
      var link = document.getElementById("nx-report-link");
      link.href = j.report_url; link.textContent = "report of " + j.run;
      link.setAttribute("download", j.run + ".html");
      link.hidden = false;
      document.documentElement.setAttribute("data-saved-run", j.run);
      link.click();
    }).catch(function (err) { status(String(err.message || err), true); });
  }
  function upload(file) {
    file.text().then(function (text) {
      return post("api/play/" + S.sid + "/upload", text, true);
    }).then(function (j) { status("Loaded " + j.rows + " rows, classes " + j.classes.join(", ")); })
      .catch(function (err) { status(String(err.message || err), true); });
  }
  function share() {
    var url = location.href;
    (navigator.clipboard ? navigator.clipboard.writeText(url) : Promise.reject(new Error("no clipboard")))
      .then(function () { status("Link copied: it opens this setup."); })
      .catch(function () { status("Copy this address to share the setup: " + url); });
  }
  var ACTIONS = {
    play: function () { setPlaying(!S.playing); control({ action: S.playing ? "play" : "pause" }); },
    step: function () { setPlaying(false); control({ action: "step" }); },
    reset: function () { setPlaying(false); control({ action: "reset" }); },
    lecture: function () { setPlaying(false); control({ action: "preset", preset: "lecture" }); },
    preset: function (name) { if (name) control({ action: "preset", preset: name }); },
    save: save, upload: upload, share: share,
  };
  NX.onInput(function (chartId, key, value) {
    if (chartId !== CONTROLS) return;
    if (ACTIONS[key]) ACTIONS[key](value);
    else if (key.slice(0, 5) === "feat.") setConfig("feat", features(key.slice(5), value));
    else if (key === "disc") setConfig("disc", value ? "1" : "0");
    else setConfig(key, value === null ? "" : String(value));
  });

  // the bar above the page: the counters, the saved run's report link, the status line
  var stat = function (label, id) { return el("span", { class: "nx-pg-stat" }, [label + " ", el("b", { id: id, text: "\u2014" })]); };
  document.getElementById("nx-pg").replaceChildren(
    el("div", { class: "nx-pg-row" }, [
      stat("epoch", "nx-epoch"), stat("train loss", "nx-train-loss"), stat("test loss", "nx-test-loss"),
      el("span", { id: "nx-dead", class: "nx-pg-stat nx-pg-bad" }),
      el("span", { id: "nx-fps", class: "nx-pg-stat nx-pg-faint" }),
      el("a", { id: "nx-report-link", class: "nx-pg-link", hidden: true }),
    ]),
    el("p", { id: "nx-pg-status", class: "nx-pg-status", role: "status", text: "Starting the playground\u2026" }));

  window.addEventListener("hashchange", function () {
    var q = location.hash.replace(/^#/, "");
    if (S.sid && q && q !== S.query) control({ action: "config", query: q });
  });
  connect();
})();
