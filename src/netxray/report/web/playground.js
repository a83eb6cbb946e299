/* netxray playground: the controls, the stream of frames, the URL state (netxray serve).
 *
 * Runs after the report's front-end (window.netxray.render / .patch). It opens the stream
 * api/play/stream?<the URL's #state> (server-sent events read with fetch, so an error's
 * message can be shown), draws the first page, then patches one chart per message; every
 * control sends its input back with a POST to api/play/<session>/control. The URL's # part
 * always holds the setup, so copying the address shares it. Text from the server goes into
 * the page through textContent only.
 */
(function () {
  "use strict";
  var NX = window.netxray;
  var S = { sid: null, query: "", playing: false, frames: [], abort: null };
  var PRESETS = JSON.parse(document.getElementById("nx-pg-presets").textContent || "{}");
  var CHOICES = {
    data: [["circle", "circle"], ["xor", "xor"], ["gauss", "gaussians"], ["spiral", "spiral"],
           ["moons", "moons"], ["csv", "uploaded CSV"]],
    classes: [2, 3, 4, 5, 6],
    ratio: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    act: [["relu", "ReLU"], ["tanh", "tanh"], ["sigmoid", "sigmoid"], ["linear", "linear"],
          ["leaky_relu", "LeakyReLU"], ["gelu", "GELU"]],
    init: ["he", "xavier", "normal", "lecture", "torch"],
    opt: [["sgd", "SGD"], ["momentum", "momentum"], ["adam", "Adam"]],
    lr: [1e-5, 1e-4, 1e-3, 0.003, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 1, 1.5, 3, 10],
    reg: [["none", "none"], ["l1", "L1"], ["l2", "L2"]],
    rate: [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
  };
  var FEATURES = [["x1", "x\u2081"], ["x2", "x\u2082"], ["x1^2", "x\u2081\u00b2"], ["x2^2", "x\u2082\u00b2"],
                  ["x1x2", "x\u2081x\u2082"], ["sin_x1", "sin x\u2081"], ["sin_x2", "sin x\u2082"]];

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
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
      NX.render(m.payload);
      controls();
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
  function select(key, options, value, label) {
    var s = el("select", { "data-key": key, "aria-label": label, onchange: function () { setConfig(key, s.value); } });
    var seen = false;
    options.forEach(function (o) {
      var v = Array.isArray(o) ? o[0] : o, t = Array.isArray(o) ? o[1] : String(o);
      if (String(v) === String(value) || (+v === +value && value !== "")) seen = true;
      s.appendChild(el("option", { value: String(v), text: t, selected: String(v) === String(value) || (+v === +value && value !== "" && !isNaN(+v)) }));
    });
    if (!seen) s.appendChild(el("option", { value: value, text: value, selected: true }));
    return field(label, s);
  }
  function input(key, value, label, attrs) {
    var i = el("input", Object.assign({ "data-key": key, "aria-label": label, value: value,
                                        onchange: function () { setConfig(key, i.value); } }, attrs || {}));
    return field(label, i);
  }
  function field(label, ctl) { return el("label", { class: "nx-pg-field" }, [el("span", { text: label }), ctl]); }

  function controls() {
    var p = parse(S.query), box = document.getElementById("nx-pg");
    var feats = p.feat.split(",");
    var presetSel = el("select", { "data-key": "preset", "aria-label": "preset", onchange: function () {
      if (presetSel.value) control({ action: "preset", preset: presetSel.value });
    } }, [el("option", { value: "", text: "\u2014 choose \u2014" })].concat(Object.keys(PRESETS).map(function (k) {
      return el("option", { value: k, text: k.replace(/_/g, " "), title: PRESETS[k], selected: k === p.preset });
    })));
    var file = el("input", { type: "file", accept: ".csv,text/csv", "aria-label": "upload a CSV", onchange: function () {
      var f = file.files[0];
      if (!f) return;
      f.text().then(function (text) {
        return post("api/play/" + S.sid + "/upload", text, true);
      }).then(function (j) { status("Loaded " + j.rows + " rows, classes " + j.classes.join(", ")); })
        .catch(function (err) { status(String(err.message || err), true); });
    } });
    var play = el("button", { id: "nx-pg-toggle", class: "nx-pg-main", text: S.playing ? "\u275a\u275a pause" : "\u25b6 play",
      onclick: function () {
        S.playing = !S.playing;
        document.documentElement.setAttribute("data-playing", S.playing ? "1" : "0");
        play.textContent = S.playing ? "\u275a\u275a pause" : "\u25b6 play";
        control({ action: S.playing ? "play" : "pause" });
      } });
    var stopPlaying = function () {
      S.playing = false; play.textContent = "\u25b6 play";
      document.documentElement.setAttribute("data-playing", "0");
    };
    var saveLink = el("a", { id: "nx-report-link", class: "nx-pg-link", hidden: true });
    var desc = p.preset && PRESETS[p.preset] ? PRESETS[p.preset] : "";
    var parts = [
      el("div", { class: "nx-pg-row" }, [
        el("button", { id: "nx-reset", text: "\u21ba reset", title: "start over with new weights",
                       onclick: function () { stopPlaying(); control({ action: "reset" }); } }),
        play,
        el("button", { id: "nx-step", text: "step", title: "train one epoch",
                       onclick: function () { stopPlaying(); control({ action: "step" }); } }),
        el("span", { class: "nx-pg-stat" }, ["epoch ", el("b", { id: "nx-epoch", text: "0" })]),
        el("span", { class: "nx-pg-stat" }, ["train loss ", el("b", { id: "nx-train-loss", text: "\u2014" })]),
        el("span", { class: "nx-pg-stat" }, ["test loss ", el("b", { id: "nx-test-loss", text: "\u2014" })]),
        el("span", { id: "nx-dead", class: "nx-pg-stat nx-pg-bad" }),
        el("span", { id: "nx-fps", class: "nx-pg-stat nx-pg-faint" }),
        field("preset", presetSel),
        el("button", { id: "nx-lecture", text: "the lecture's setup", title: PRESETS.lecture || "",
                       onclick: function () { stopPlaying(); control({ action: "preset", preset: "lecture" }); } }),
        el("button", { id: "nx-save", text: "save this run", title: "record it in the run store and download its report",
          onclick: function () {
            status("Saving: training it again under netxray.watch\u2026");
            post("api/play/save", { session: S.sid }).then(function (j) {
              status("Saved as " + j.run + " (" + j.epochs + " epochs); the report downloads.");
              saveLink.href = j.report_url; saveLink.textContent = "report of " + j.run;
              saveLink.setAttribute("download", j.run + ".html");
              saveLink.hidden = false;
              document.documentElement.setAttribute("data-saved-run", j.run);
              saveLink.click();
            }).catch(function (err) { status(String(err.message || err), true); });
          } }),
        saveLink,
      ]),
      el("div", { class: "nx-pg-row" }, [
        select("data", CHOICES.data, p.data, "data"),
        select("classes", CHOICES.classes, p.classes, "classes"),
        input("n", p.n, "samples", { type: "number", min: 20, step: 10, style: "width:5.5em" }),
        input("noise", p.noise, "noise", { type: "number", min: 0, max: 2, step: 0.05, style: "width:5em" }),
        select("ratio", CHOICES.ratio.map(function (r) { return [r, Math.round(r * 100) + "% train"]; }), p.ratio, "train/test"),
        input("batch", p.batch, "batch (0 = all)", { type: "number", min: 0, step: 1, style: "width:4.5em" }),
        input("seed", p.seed, "seed", { type: "number", min: 0, step: 1, style: "width:5em" }),
        field("upload 2-D CSV (x1,x2,label)", file),
      ]),
      el("div", { class: "nx-pg-row" }, [
        el("span", { class: "nx-pg-field" }, [el("span", { text: "features" })].concat(FEATURES.map(function (f) {
          var cb = el("input", { type: "checkbox", "data-feature": f[0], checked: feats.indexOf(f[0]) >= 0, onchange: function () {
            var on = Array.prototype.slice.call(box.querySelectorAll("input[data-feature]"))
              .filter(function (c) { return c.checked; }).map(function (c) { return c.getAttribute("data-feature"); });
            setConfig("feat", on.join(","));
          } });
          return el("label", { class: "nx-pg-check" }, [cb, f[1]]);
        }))),
        input("hidden", p.hidden, "hidden units per layer", { type: "text", style: "width:8em", title: "e.g. 4,2: up to 6 layers of up to 16 units" }),
        select("act", CHOICES.act, p.act, "activation"),
        select("init", CHOICES.init, p.init, "init"),
        select("opt", CHOICES.opt, p.opt, "optimizer"),
        select("lr", CHOICES.lr, p.lr, "learning rate"),
        select("reg", CHOICES.reg, p.reg, "regularization"),
        select("rate", CHOICES.rate, p.rate, "reg. rate"),
        el("label", { class: "nx-pg-check" }, [el("input", { type: "checkbox", "data-key": "disc", checked: p.disc === "1",
          onchange: function (e) { setConfig("disc", e.target.checked ? "1" : "0"); } }), "discretize output"]),
        el("button", { id: "nx-share", text: "copy link", title: "the address holds this setup", onclick: function () {
          var url = location.href;
          (navigator.clipboard ? navigator.clipboard.writeText(url) : Promise.reject(new Error("no clipboard")))
            .then(function () { status("Link copied: it opens this setup."); })
            .catch(function () { status("Copy this address to share the setup: " + url); });
        } }),
      ]),
      desc ? el("p", { class: "nx-pg-desc", text: desc }) : null,
      el("p", { id: "nx-pg-status", class: "nx-pg-status", role: "status" }),
    ];
    box.replaceChildren.apply(box, parts.filter(Boolean));
  }

  window.addEventListener("hashchange", function () {
    var q = location.hash.replace(/^#/, "");
    if (S.sid && q && q !== S.query) control({ action: "config", query: q });
  });
  document.getElementById("nx-pg").appendChild(el("p", { id: "nx-pg-status", class: "nx-pg-status", text: "Starting the playground\u2026" }));
  connect();
})();
