// graphc explorer: draws the page's JSON (every stage, values, training) as SVG.
// Written for graphc, no library: pan and zoom are one transform on one <g>.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("graphc-data").textContent);
  var SVGNS = "http://www.w3.org/2000/svg";
  var root = document.documentElement;
  var svg = document.getElementById("graph");
  var view = document.getElementById("viewport");
  var panel = document.getElementById("node-panel");
  var stageSlider = document.getElementById("stage-slider");
  var stepSlider = document.getElementById("step-slider");
  var training = DATA.training || null;
  var lastStep = training ? training.steps : 0;
  var FILL = {input: ["#dbeafe", "#1d4ed8"], param: ["#dcfce7", "#15803d"], "const": ["#f3f4f6", "#6b7280"],
              op: ["#ffffff", "#374151"], fused: ["#ede9fe", "#6d28d9"], output: ["#fef9c3", "#a16207"],
              backward: ["#ffedd5", "#c2410c"]};
  var MARK = {created: "#0891b2", merged: "#db2777", folded: "#7c3aed", fused: "#6d28d9"};
  var state = {stage: 0, step: 0, selected: null, zoom: {k: 1, x: 0, y: 0}, expanded: {}, timer: null};
  var edgeEls = [];

  function el(tag, attrs, parent) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) { if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]); }
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function fmt(v) {
    if (typeof v === "string") return v;
    if (v === undefined || v === null) return "—";
    if (v === 0) return "0";
    var a = Math.abs(v);
    return (a >= 1e4 || a < 1e-3) ? v.toExponential(2) : String(+v.toPrecision(4));
  }

  // ---- gradients per node and step (training playback, or the feeds' gradients) ----
  var grads = training ? training.grads : (DATA.still || {});
  var logLo = Infinity, logHi = -Infinity;
  Object.keys(grads).forEach(function (id) {
    grads[id].forEach(function (m) {
      if (typeof m === "number" && m > 0) { var l = Math.log10(m); logLo = Math.min(logLo, l); logHi = Math.max(logHi, l); }
    });
  });
  function gradAt(id, step) {
    var series = grads[id];
    if (!series) return null;
    var m = series[Math.min(step, series.length - 1)];
    return typeof m === "number" ? m : null;
  }
  function ramp(t) {  // light to dark blue: how much gradient flows (log scale)
    var a = [191, 219, 254], b = [30, 58, 138];
    return "rgb(" + a.map(function (x, i) { return Math.round(x + (b[i] - x) * t); }).join(",") + ")";
  }

  // ---- the graph ----
  function stage() { return DATA.stages[state.stage]; }
  function hiddenBy(st) {
    var hidden = {};
    st.blocks.forEach(function (b, k) {
      if (!state.expanded[st.name + ":" + k]) b.members.forEach(function (i) { hidden[i] = k; });
    });
    return hidden;
  }
  function center(box, side) { return [side === "in" ? box.x : box.x + box.w, box.y + box.h / 2]; }
  var SUMMARY_W = 320;  // a summarized run of columns is drawn this wide: the rest moves closer
  function placer(st, hidden) {
    var cuts = [];
    st.blocks.forEach(function (b, k) {
      if (!state.expanded[st.name + ":" + k]) cuts.push([b.x + b.w, b.w - SUMMARY_W]);
    });
    function shift(x) {
      var d = 0;
      cuts.forEach(function (c) { if (x >= c[0]) d += c[1]; });
      return d;
    }
    var boxes = st.nodes.map(function (n, i) {
      return hidden[i] !== undefined ? null : {x: n.x - shift(n.x), y: n.y, w: n.w, h: n.h};
    });
    var blockBoxes = st.blocks.map(function (b) {
      var h = Math.max(b.h, 130);  // tall enough to read and to click at the overview's zoom
      return {x: b.x - shift(b.x), y: b.y + (b.h - h) / 2, w: SUMMARY_W, h: h};
    });
    return {nodes: boxes, blocks: blockBoxes};
  }

  function drawStage() {
    var st = stage();
    while (view.firstChild) view.removeChild(view.firstChild);
    edgeEls = [];
    var hidden = hiddenBy(st);
    var at = placer(st, hidden);
    state.boxes = at;
    var big = st.nodes.length > 400;
    svg.classList.toggle("big", big);
    var edgeLayer = el("g", {"class": "edges"}, view);
    var nodeLayer = el("g", {"class": "nodes"}, view);
    var seen = {};
    st.edges.forEach(function (e) {
      var s = e[0], t = e[1], hs = hidden[s], ht = hidden[t];
      if (hs !== undefined && hs === ht) return;
      var a = hs !== undefined ? at.blocks[hs] : at.nodes[s];
      var b = ht !== undefined ? at.blocks[ht] : at.nodes[t];
      var summary = hs !== undefined || ht !== undefined;
      if (summary) {
        var key = (hs !== undefined ? "b" + hs : s) + ">" + (ht !== undefined ? "b" + ht : t);
        if (seen[key]) return;
        seen[key] = 1;
      }
      var p = center(a, "out"), q = center(b, "in");
      if (q[0] <= p[0]) { p = [a.x + a.w / 2, a.y + a.h]; q = [b.x + b.w / 2, b.y]; }
      var dx = Math.max(30, (q[0] - p[0]) / 2), d;
      if (big) d = "M" + p[0] + "," + p[1] + " L" + q[0] + "," + q[1];  // straight: cheap to paint
      else d = "M" + p[0] + "," + p[1] + " C" + (p[0] + dx) + "," + p[1] + " " + (q[0] - dx) + "," + q[1] + " " + q[0] + "," + q[1];
      var cls = "edge" + (e[2] ? " backward" : "") + (summary ? " summary-edge" : "");
      var path = el("path", {d: d, "class": cls}, edgeLayer);
      if (!summary && !e[2]) edgeEls.push([path, st.nodes[s].id, st.nodes[t].id]);
    });
    st.nodes.forEach(function (n, i) {
      if (hidden[i] !== undefined) return;
      var colours = FILL[n.kind] || FILL.op;
      var cls = "node kind-" + n.kind + (n.added ? " added" : "") + (n.changed ? " changed" : "") +
                (n.zero_grad ? " zero-grad" : "") + (isBad(n.id) ? " bad" : "") +
                (state.selected === n.id ? " selected" : "");
      var box = at.nodes[i];
      var g = el("g", {"class": cls, "data-node": n.id, transform: "translate(" + box.x + "," + box.y + ")"}, nodeLayer);
      el("title", {}, g).textContent = n.id + " · " + n.op + " · " + n.shape;
      var stroke = n.mark && MARK[n.mark] ? MARK[n.mark] : colours[1];
      el("rect", {width: n.w, height: n.h, rx: n.kind === "input" ? 2 : 8, fill: colours[0], stroke: stroke,
                  "stroke-dasharray": n.kind === "const" ? "4 3" : null}, g);
      el("text", {x: n.w / 2, y: 17, "text-anchor": "middle", "font-weight": "600"}, g).textContent = n.id;
      var sub = (n.kind === "input" || n.kind === "param" || n.kind === "const" ? n.kind : n.op) + " · " + n.shape;
      el("text", {x: n.w / 2, y: 33, "text-anchor": "middle", "class": "sub"}, g).textContent = sub;
      g.addEventListener("click", function (ev) { if (!moved) { select(n.id); ev.stopPropagation(); } });
    });
    st.blocks.forEach(function (b, k) {
      if (state.expanded[st.name + ":" + k]) return;
      var ids = b.members.map(function (i) { return st.nodes[i].id; });
      var box = at.blocks[k];
      var g = el("g", {"class": "summary", "data-nodes": ids.join(" "), transform: "translate(" + box.x + "," + box.y + ")"}, nodeLayer);
      el("title", {}, g).textContent = "click to draw these " + ids.length + " nodes";
      el("rect", {width: box.w, height: box.h, rx: 14}, g);
      el("text", {x: box.w / 2, y: box.h / 2 - 8, "text-anchor": "middle", "font-weight": "600"}, g).textContent = b.label;
      el("text", {x: box.w / 2, y: box.h / 2 + 12, "text-anchor": "middle"}, g).textContent = b.ops;
      el("text", {x: box.w / 2, y: box.h / 2 + 30, "text-anchor": "middle"}, g).textContent = "click to expand";
      g.addEventListener("click", function (ev) {
        if (moved) return;
        state.expanded[st.name + ":" + k] = true; drawStage(); fit(); ev.stopPropagation();
      });
    });
    colourEdges();
    root.setAttribute("data-stage", st.name);
    stageSlider.value = String(state.stage);
    document.getElementById("stage-name").textContent = (state.stage + 1) + "/" + DATA.stages.length + " · " + st.name +
      " · " + st.nodes.length + " nodes";
    var ch = document.getElementById("stage-changes");
    ch.textContent = "";
    if (state.stage > 0) {
      var parts = [["added", "+" + st.added + " new"], ["changed", "~" + st.changed + " changed"], ["", "−" + st.removed + " removed"]];
      parts.forEach(function (p) { var b = html("b", p[1], p[0]); ch.appendChild(b); ch.appendChild(document.createTextNode(" ")); });
      if (st.passes) ch.appendChild(document.createTextNode("· " + st.passes));
    }
  }

  function isBad(id) {
    var v = DATA.values[id], g = DATA.grads[id];
    return (v && v.bad > 0) || (g && g.bad > 0);
  }

  function colourEdges() {
    var span = logHi > logLo ? logHi - logLo : 1;
    edgeEls.forEach(function (item) {
      var path = item[0], a = gradAt(item[1], state.step), b = gradAt(item[2], state.step);
      path.classList.remove("zero");
      path.removeAttribute("style");
      if (a === null && b === null) return;
      var known = [a, b].filter(function (m) { return m !== null; });
      var m = Math.min.apply(null, known);
      if (m === 0) { path.classList.add("zero"); return; }
      var t = Math.max(0, Math.min(1, (Math.log10(m) - logLo) / span));
      path.setAttribute("style", "stroke:" + ramp(t) + ";stroke-width:" + (1 + 2.5 * t).toFixed(2));
    });
  }

  // ---- pan and zoom ----
  function applyZoom() {
    var z = state.zoom;
    view.setAttribute("transform", "translate(" + z.x.toFixed(2) + "," + z.y.toFixed(2) + ") scale(" + z.k.toFixed(4) + ")");
    svg.setAttribute("data-zoom", z.k.toFixed(4));
    svg.classList.toggle("far", z.k < 0.3);  // labels too small to read are not drawn at all
  }
  function zoomAt(factor, px, py) {
    var z = state.zoom, k = Math.max(0.02, Math.min(8, z.k * factor));
    z.x = px - (px - z.x) * (k / z.k); z.y = py - (py - z.y) * (k / z.k); z.k = k;
    applyZoom();
  }
  function fit() {
    var st = stage(), w = svg.clientWidth || 800, h = svg.clientHeight || 500;
    var x1 = 0, y1 = 0;
    state.boxes.nodes.concat(state.boxes.blocks).forEach(function (n) {
      if (n) { x1 = Math.max(x1, n.x + n.w); y1 = Math.max(y1, n.y + n.h); }
    });
    var k = Math.min(1.4, (w - 40) / Math.max(x1, 1), (h - 40) / Math.max(y1, 1));
    var shown = state.boxes.nodes.filter(function (b) { return b; }).length;
    if (shown <= 60) k = Math.max(k, 0.85);  // small graphs open legible (12 px labels); pan for the rest
    else if (shown <= 150) k = Math.max(k, 0.6);
    state.zoom = {k: k, x: Math.max(20, (w - x1 * k) / 2), y: Math.max(20, (h - y1 * k) / 2)};
    applyZoom();
  }
  var drag = null, moved = false;
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var r = svg.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  }, {passive: false});
  svg.addEventListener("pointerdown", function (ev) {
    drag = {x: ev.clientX, y: ev.clientY, zx: state.zoom.x, zy: state.zoom.y}; moved = false;
  });
  window.addEventListener("pointermove", function (ev) {
    if (!drag) return;
    var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { moved = true; svg.classList.add("dragging"); }
    if (moved) { state.zoom.x = drag.zx + dx; state.zoom.y = drag.zy + dy; applyZoom(); }
  });
  window.addEventListener("pointerup", function () { drag = null; svg.classList.remove("dragging"); setTimeout(function () { moved = false; }, 0); });
  function zoomCenter(f) { zoomAt(f, (svg.clientWidth || 800) / 2, (svg.clientHeight || 500) / 2); }
  document.getElementById("zoom-in").addEventListener("click", function () { zoomCenter(1.25); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoomCenter(0.8); });
  document.getElementById("zoom-fit").addEventListener("click", fit);
  document.getElementById("expand-all").addEventListener("click", function () {
    var st = stage();
    st.blocks.forEach(function (b, k) { state.expanded[st.name + ":" + k] = true; });
    drawStage(); fit();
  });

  // ---- the node panel ----
  function histogram(summary, colour) {
    var s = el("svg", {width: 240, height: 46, "class": "hist"});
    if (!summary.hist) return s;
    var top = Math.max.apply(null, summary.hist) || 1, w = 240 / summary.hist.length;
    summary.hist.forEach(function (c, i) {
      var h = 36 * c / top;
      el("rect", {x: i * w + 1, y: 38 - h, width: w - 2, height: h, fill: colour}, s);
    });
    el("text", {x: 0, y: 46, "font-size": 9}, s).textContent = fmt(summary.edges[0]);
    el("text", {x: 240, y: 46, "font-size": 9, "text-anchor": "end"}, s).textContent = fmt(summary.edges[1]);
    return s;
  }
  function tensorBlock(title, summary, colour, zeroClass) {
    var box = document.createElement("div");
    box.appendChild(html("h3", title));
    var line = "shape " + (summary.shape.length ? summary.shape.join("×") : "scalar") + " · ";
    line += summary.min !== undefined ? "min " + fmt(summary.min) + " · mean " + fmt(summary.mean) + " · max " + fmt(summary.max) : "no finite entry";
    box.appendChild(html("p", line));
    if (summary.zeros) box.appendChild(html("p", summary.zeros + " of " + summary.size + " entries exactly zero" +
      (summary.zeros === summary.size && zeroClass ? ": no gradient flows here" : "")));
    if (summary.bad) box.appendChild(html("p", summary.bad + " NaN/Inf", "bad"));
    if (summary.hist) box.appendChild(histogram(summary, colour));
    if (summary.entries) {
      var table = html("table"), cols = summary.shape.length > 1 ? summary.shape[summary.shape.length - 1] : summary.entries.length;
      var tr = null;
      summary.entries.forEach(function (v, i) {
        if (i % cols === 0) { tr = html("tr"); table.appendChild(tr); }
        tr.appendChild(html("td", fmt(v), v === 0 && zeroClass ? "zero" : (typeof v === "string" ? "bad" : "")));
      });
      box.appendChild(table);
    }
    return box;
  }
  function select(id) {
    state.selected = id;
    Array.prototype.forEach.call(view.querySelectorAll(".node.selected"), function (e) { e.classList.remove("selected"); });
    var mine = view.querySelector('[data-node="' + CSS.escape(id) + '"]');
    if (mine) mine.classList.add("selected");
    var st = stage(), n = null;
    st.nodes.forEach(function (m) { if (m.id === id) n = m; });
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    panel.setAttribute("data-node", id);
    if (!n) { panel.appendChild(html("p", id + " is not in stage " + st.name)); return; }
    panel.appendChild(html("h2", n.id));
    var kind = n.kind === "op" ? "op" : n.kind;
    var head = n.op === kind ? "op " + n.op : "op " + n.op + " · " + kind;
    panel.appendChild(html("p", head + " · shape " + n.shape + (n.backward ? " · backward pass" : "")));
    if (n.grad_of) panel.appendChild(html("p", "holds a gradient: ∂loss/∂" + n.grad_of));
    if (n.added) panel.appendChild(html("p", "new in this stage", "added"));
    if (n.changed) panel.appendChild(html("p", "changed by this stage's passes", "changed"));
    if (n.formula !== undefined) {
      panel.appendChild(html("h3", "formula"));
      var f = document.createElement("div");
      f.className = "formula";
      f.innerHTML = DATA.formulas[n.formula];  // MathML written and escaped by graphc
      panel.appendChild(f);
    }
    if (n.kink) { panel.appendChild(html("h3", "kink convention")); panel.appendChild(html("p", n.kink, "kink")); }
    var v = DATA.values[id], g = DATA.grads[id], when = "(for the feeds given, before training)";
    if (training && training.param_values[id]) {  // a param moves as it trains: show this step's
      v = training.param_values[id][state.step]; g = training.param_grads[id][state.step];
      when = "at SGD step " + state.step;
    }
    if (v) panel.appendChild(tensorBlock("value " + when, v, "#64748b", false));
    if (g) panel.appendChild(tensorBlock("gradient ∂loss/∂" + id + " " + when.replace("(for the feeds given, ", "("), g, "#1e3a8a", true));
    var now = gradAt(id, state.step);
    if (training && now !== null) panel.appendChild(html("p", "mean |gradient| at SGD step " + state.step + ": " + fmt(now)));
    var code = DATA.code[id];
    if (code) { panel.appendChild(html("h3", "generated code")); panel.appendChild(html("pre", code.join("\n"))); }
    if (!v && !g && !DATA.values.__none) panel.appendChild(html("p", "no value: explore with feeds to see values and gradients", "hint"));
  }

  // ---- training playback ----
  function lossCurve() {
    var s = document.getElementById("loss-curve");
    while (s.firstChild) s.removeChild(s.firstChild);
    if (!training) return;
    var W = 340, H = 190, L = 46, B = 24, loss = training.loss.map(function (v) { return typeof v === "number" ? v : NaN; });
    var finite = loss.filter(isFinite), lo = Math.min.apply(null, finite), hi = Math.max.apply(null, finite);
    if (!(hi > lo)) { hi = lo + 1; }
    var n = Math.max(1, loss.length - 1);
    function X(i) { return L + (W - L - 10) * i / n; }
    function Y(v) { return 10 + (H - B - 10) * (hi - v) / (hi - lo); }
    el("line", {x1: L, y1: H - B, x2: W - 6, y2: H - B, stroke: "#9ca3af"}, s);
    el("line", {x1: L, y1: 8, x2: L, y2: H - B, stroke: "#9ca3af"}, s);
    el("text", {x: L - 4, y: 14, "text-anchor": "end", "font-size": 10}, s).textContent = fmt(hi);
    el("text", {x: L - 4, y: H - B, "text-anchor": "end", "font-size": 10}, s).textContent = fmt(lo);
    el("text", {x: W - 6, y: H - 6, "text-anchor": "end", "font-size": 10}, s).textContent = "step " + (loss.length - 1);
    var pts = [];
    for (var i = 0; i <= state.step && i < loss.length; i++) { if (isFinite(loss[i])) pts.push(X(i).toFixed(1) + "," + Y(loss[i]).toFixed(1)); }
    el("polyline", {points: pts.join(" "), fill: "none", stroke: "#111827", "stroke-width": 1.6}, s);
    for (var j = 0; j <= state.step && j < loss.length; j++) {
      if (!isFinite(loss[j])) continue;
      var c = el("circle", {cx: X(j).toFixed(1), cy: Y(loss[j]).toFixed(1), r: j === state.step ? 3.5 : 2,
                            fill: j === state.step ? "#dc2626" : "#111827", "data-testid": "loss-point", "data-step": j}, s);
      el("title", {}, c).textContent = "step " + j + ": loss " + fmt(loss[j]);
    }
  }
  function depthColour(t) {  // the input side light orange, the output side dark blue
    var a = [251, 146, 60], b = [30, 58, 138];
    return "rgb(" + a.map(function (x, i) { return Math.round(x + (b[i] - x) * t); }).join(",") + ")";
  }
  var PALETTE = ["#1d4ed8", "#15803d", "#b45309", "#7c3aed", "#0e7490", "#be185d", "#4d7c0f", "#9a3412"];
  function gradChart() {
    var s = document.getElementById("grad-chart");
    while (s.firstChild) s.removeChild(s.firstChild);
    if (!training) return;
    var names = Object.keys(training.params), W = 420, H = 190, L = 52, B = 24, R = 96;
    var lo = Infinity, hi = -Infinity;
    names.forEach(function (p) { training.params[p].forEach(function (v) { if (typeof v === "number" && v > 0) { lo = Math.min(lo, Math.log10(v)); hi = Math.max(hi, Math.log10(v)); } }); });
    if (!isFinite(lo)) { lo = -1; hi = 0; }
    if (hi - lo < 1) { hi += 0.5; lo -= 0.5; }
    var n = Math.max(1, training.loss.length - 1);
    function X(i) { return L + (W - L - R) * i / n; }
    function Y(v) { return 8 + (H - B - 8) * (hi - Math.log10(v)) / (hi - lo); }
    el("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#9ca3af"}, s);
    el("line", {x1: L, y1: 8, x2: L, y2: H - B, stroke: "#9ca3af"}, s);
    function power(v) { var k = Math.round(v); return k === 0 ? "1" : "1e" + k; }  // never "1e-0"
    el("text", {x: L - 4, y: 14, "text-anchor": "end", "font-size": 10}, s).textContent = power(hi);
    el("text", {x: L - 4, y: H - B, "text-anchor": "end", "font-size": 10}, s).textContent = power(lo);
    var deep = names.length > 8;  // many layers: colour by depth, first light, last dark
    names.forEach(function (p, k) {
      var colour = deep ? depthColour(k / (names.length - 1)) : PALETTE[k % PALETTE.length];
      var pts = training.params[p].map(function (v, i) { return typeof v === "number" && v > 0 ? X(i).toFixed(1) + "," + Y(v).toFixed(1) : null; })
        .filter(function (x) { return x; });
      el("polyline", {points: pts.join(" "), fill: "none", stroke: colour, "stroke-width": 1.4, "data-param": p}, s);
      if (!deep) el("text", {x: W - R + 6, y: 14 + 13 * k, "font-size": 10, fill: colour}, s).textContent = p;
    });
    if (deep) {
      [[0, "first: "], [names.length - 1, "last: "]].forEach(function (end, row) {
        var p = names[end[0]];
        el("text", {x: W - R + 6, y: 14 + 14 * row, "font-size": 10, fill: depthColour(end[0] / (names.length - 1))}, s)
          .textContent = end[1] + p;
      });
      el("text", {x: W - R + 6, y: 46, "font-size": 10, fill: "#4b5563"}, s).textContent = names.length + " params,";
      el("text", {x: W - R + 6, y: 58, "font-size": 10, fill: "#4b5563"}, s).textContent = "dark = deeper";
    }
    el("line", {x1: X(state.step), y1: 8, x2: X(state.step), y2: H - B, stroke: "#dc2626", "stroke-dasharray": "3 2"}, s);
  }
  var CLASS = [[245, 158, 11], [37, 99, 235], [22, 163, 74], [190, 24, 93], [124, 58, 237], [14, 116, 144]];
  function boundary() {
    var fig = document.getElementById("boundary-figure");
    var b = training && training.boundary;
    if (!b) { fig.hidden = true; return; }
    var canvas = document.getElementById("boundary"), ctx = canvas.getContext("2d");
    var frame = b.frames[Math.min(state.step, b.frames.length - 1)], n = Math.round(Math.sqrt(frame.length));
    var cell = canvas.width / n, lo = Infinity, hi = -Infinity;
    frame.forEach(function (v) { lo = Math.min(lo, v); hi = Math.max(hi, v); });
    var probability = b.classes === 2 && lo >= 0 && hi <= 1;
    for (var i = 0; i < frame.length; i++) {
      var v = frame[i], rgb, alpha;
      if (b.classes > 2) { rgb = CLASS[Math.floor(v) % CLASS.length]; alpha = Math.max(0, (v - Math.floor(v) - 1 / b.classes) * 1.3); }
      else {
        var p = probability ? v : (hi > lo ? (v - lo) / (hi - lo) : 0.5);
        rgb = p >= 0.5 ? CLASS[1] : CLASS[0]; alpha = Math.abs(p - 0.5) * 1.6;
      }
      ctx.fillStyle = "rgba(" + rgb.join(",") + "," + (0.12 + 0.7 * Math.min(1, alpha)).toFixed(3) + ")";
      ctx.clearRect((i % n) * cell, Math.floor(i / n) * cell, cell + 1, cell + 1);
      ctx.fillRect((i % n) * cell, Math.floor(i / n) * cell, cell + 1, cell + 1);
    }
    var e = b.extent;
    b.points.forEach(function (pt) {
      var x = (pt[0] - e[0]) / (e[1] - e[0]) * canvas.width, y = (e[3] - pt[1]) / (e[3] - e[2]) * canvas.height;
      ctx.beginPath(); ctx.arc(x, y, 2.6, 0, 2 * Math.PI);
      ctx.fillStyle = "rgb(" + CLASS[pt[2] % CLASS.length].join(",") + ")"; ctx.fill();
      ctx.lineWidth = 0.8; ctx.strokeStyle = "#ffffff"; ctx.stroke();
    });
    canvas.setAttribute("data-frame", String(Math.min(state.step, b.frames.length - 1)));
  }
  function showStep(k) {
    state.step = Math.max(0, Math.min(lastStep, k));
    root.setAttribute("data-step", String(state.step));
    stepSlider.value = String(state.step);
    if (training) {
      var loss = training.loss[state.step];
      document.getElementById("step-label").textContent = "step " + state.step + " of " + lastStep + " · loss " + fmt(loss) +
        " · lr " + training.lr;
    }
    colourEdges(); lossCurve(); gradChart(); boundary();
    if (state.selected) select(state.selected);
  }
  function stop() { if (state.timer) { clearInterval(state.timer); state.timer = null; } document.getElementById("play").textContent = "▶ play"; }
  function play() {
    if (!training) return;
    if (state.timer) { stop(); return; }
    if (state.step >= lastStep) showStep(0);
    document.getElementById("play").textContent = "❙❙ pause";
    state.timer = setInterval(function () {
      if (state.step >= lastStep) { stop(); return; }
      showStep(state.step + 1);
    }, 60);
  }

  // ---- controls ----
  function showStage(k) {
    var before = state.stage;
    state.stage = Math.max(0, Math.min(DATA.stages.length - 1, k));
    drawStage();
    if (before !== state.stage) fit();
    if (state.selected) select(state.selected);
  }
  stageSlider.max = String(DATA.stages.length - 1);
  stageSlider.addEventListener("input", function () { showStage(+stageSlider.value); });
  stageSlider.addEventListener("change", function () { showStage(+stageSlider.value); });
  stepSlider.max = String(lastStep);
  stepSlider.addEventListener("input", function () { stop(); showStep(+stepSlider.value); });
  stepSlider.addEventListener("change", function () { stop(); showStep(+stepSlider.value); });
  document.getElementById("play").addEventListener("click", play);
  document.addEventListener("keydown", function (ev) {
    if (ev.target && ev.target.tagName === "INPUT" && (ev.key === "ArrowLeft" || ev.key === "ArrowRight")) return;
    if (ev.key === "ArrowRight") showStage(state.stage + 1);
    else if (ev.key === "ArrowLeft") showStage(state.stage - 1);
    else if (ev.key === "+" || ev.key === "=") zoomCenter(1.25);
    else if (ev.key === "-") zoomCenter(0.8);
    else if (ev.key === "0") fit();
    else if (ev.key === " ") { ev.preventDefault(); play(); }
    else if (ev.key === ".") { stop(); showStep(state.step + 1); }
    else if (ev.key === ",") { stop(); showStep(state.step - 1); }
  });

  // ---- legend and summary line ----
  (function legend() {
    var box = document.getElementById("legend");
    [["input", "input (fed data)"], ["param", "param (learned)"], ["const", "constant"], ["op", "op (forward)"],
     ["fused", "fused kernel"], ["output", "output"], ["backward", "backward (gradient)"]].forEach(function (k) {
      var s = html("span"), sw = html("span", null, "swatch");
      sw.style.background = FILL[k[0]][0]; sw.style.borderColor = FILL[k[0]][1];
      s.appendChild(sw); s.appendChild(document.createTextNode(k[1])); box.appendChild(s);
    });
    var added = html("span"); added.innerHTML = '<span class="swatch" style="border:2px solid #0891b2"></span>new in this stage';
    var changed = html("span"); changed.innerHTML = '<span class="swatch" style="border:2px solid #db2777"></span>changed by its passes';
    var flow = html("span"); flow.innerHTML = 'edges: gradient flowing<span class="ramp"></span>(log scale), ' +
      '<span style="color:#9a9a9a">╌ grey dashed: exactly zero</span>, <span style="color:#c2410c">╌ orange dashed: backward pass</span>';
    var bad = html("span"); bad.innerHTML = '<span class="swatch" style="border:2px solid #dc2626"></span>NaN or Inf';
    [added, changed, flow, bad].forEach(function (s) { box.appendChild(s); });
    var wrt = DATA.wrt.length > 10 ? DATA.wrt.slice(0, 10).join(", ") + " … (" + DATA.wrt.length + " in all)" : DATA.wrt.join(", ");
    var summary = "outputs " + DATA.outputs.join(", ") + " · gradients with respect to " + (wrt || "nothing") +
      " · " + DATA.stages.length + " stages";
    if (training) summary += " · " + training.steps + " SGD steps precomputed (lr " + training.lr + ")";
    else if (!Object.keys(DATA.values).length) summary += " · no feeds given: no values";
    else summary += " · values and gradients for the feeds given";
    document.getElementById("summary").textContent = summary;
  })();

  drawStage();
  fit();
  showStep(0);
})();
