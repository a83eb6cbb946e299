/* netxray front-end: the controls kind, a form whose input goes back to the page's script.
 *
 * renderControls draws selects, numbers, text fields, checkboxes, buttons and file pickers,
 * each with a visible label, an accessible name and a data-key attribute. What the user set
 * is kept in the card's state across redraws and patches, unless the spec's value for that
 * key changed (then the new value wins). Every change goes to the listeners registered with
 * window.netxray.onInput(function (chartId, key, value) {...}): chartId is the spec's id
 * (null without one), value the option's value (a select), a number (null when empty), a
 * string, a bool (a checkbox), true (a button) or the File (a file picker). A static report
 * has no listener: a change is only kept in the card.
 */

var INPUT_LISTENERS = [];

// Register fn(chartId, key, value) for every control's input; returns a function removing it.
function onInput(fn) {
  if (typeof fn !== "function") throw new Error("netxray.onInput needs a function (chartId, key, value)");
  INPUT_LISTENERS.push(fn);
  return function () {
    var i = INPUT_LISTENERS.indexOf(fn);
    if (i >= 0) INPUT_LISTENERS.splice(i, 1);
  };
}

function sendInput(chartId, key, value) {
  INPUT_LISTENERS.slice().forEach(function (fn) {
    try { fn(chartId, key, value); } catch (err) { console.error("netxray: an onInput listener failed:", err); }
  });
}

function sameValue(a, b) {
  return JSON.stringify(a === undefined ? null : a) === JSON.stringify(b === undefined ? null : b);
}

function optionIndex(options, v) {
  for (var i = 0; i < options.length; i++) if (sameValue(options[i][0], v)) return i;
  return -1;
}

function controlElement(c, v, send) {
  var common = { "data-key": c.key, "aria-label": c.label, title: c.title || null };
  var ctl;
  if (c.type === "select") {
    ctl = el("select", Object.assign({ class: "nx-select" }, common), c.options.map(function (o, i) {
      return el("option", { value: String(o[0]), text: o[1], "data-index": String(i) });
    }));
    ctl.selectedIndex = Math.max(0, optionIndex(c.options, v));
    ctl.addEventListener("change", function () { send(c.options[ctl.selectedIndex][0]); });
  } else if (c.type === "number" || c.type === "text") {
    ctl = el("input", Object.assign({ type: c.type, min: c.min, max: c.max, step: c.step,
                                      placeholder: c.placeholder }, common));
    ctl.value = v === null || v === undefined ? "" : String(v);
    ctl.addEventListener("change", function () {
      if (c.type === "text") { send(ctl.value); return; }
      var n = ctl.value.trim() === "" ? NaN : Number(ctl.value);
      send(isFinite(n) ? n : null);
    });
  } else if (c.type === "checkbox") {
    ctl = el("input", Object.assign({ type: "checkbox" }, common));
    ctl.checked = !!v;
    ctl.addEventListener("change", function () { send(ctl.checked); });
    return el("label", { class: "nx-ctl-check", "data-type": c.type }, [ctl, c.label]);
  } else if (c.type === "button") {
    ctl = el("button", Object.assign({ type: "button", class: c.primary ? "nx-ctl-button nx-ctl-primary" : "nx-ctl-button",
                                       text: c.label }, common));
    ctl.addEventListener("click", function () { send(true); });
    return ctl;
  } else if (c.type === "file") {
    ctl = el("input", Object.assign({ type: "file", accept: c.accept }, common));
    ctl.addEventListener("change", function () { if (ctl.files && ctl.files[0]) send(ctl.files[0]); });
  } else {
    throw new Error("unknown control type " + JSON.stringify(c.type) + " for " + JSON.stringify(c.key));
  }
  return el("label", { class: "nx-ctl-field", "data-type": c.type }, [el("span", { text: c.label }), ctl]);
}

function renderControls(spec, body, st) {
  var chartId = spec.id === undefined ? null : spec.id;
  st.values = st.values || {};   // key -> the value shown (the user's, once changed)
  st.given = st.given || {};     // key -> the spec's value it was last drawn with
  var rows = [], row = null, group = null;
  (spec.controls || []).forEach(function (c) {
    var keep = Object.prototype.hasOwnProperty.call(st.values, c.key) && sameValue(st.given[c.key], c.value);
    var v = keep ? st.values[c.key] : c.value;
    if (c.type === "select" && optionIndex(c.options, v) < 0) v = c.value;
    st.given[c.key] = c.value;
    st.values[c.key] = v;
    var send = function (value) {
      st.values[c.key] = value;
      sendInput(chartId, c.key, value);
    };
    var g = c.group || "";
    if (row === null || g !== group) {   // a run of controls of one group shares a row
      group = g;
      row = el("div", { class: "nx-ctl-row", role: "group", "aria-label": g || null, "data-group": g || null },
               g ? [el("span", { class: "nx-ctl-group", text: g })] : []);
      rows.push(row);
    }
    row.appendChild(controlElement(c, v, send));
  });
  body.appendChild(el("div", { class: "nx-ctl-form" }, rows));
}
