// Live counts and the per-second graph of the overview, from the dashboard's Server-Sent
// Events. Everything works without it: the page shows the counts as of its load.
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var base = document.body.getAttribute("data-base") || "";
  var graph = document.getElementById("live-graph");
  var hasLive = document.querySelector("[data-live]") !== null;
  if (!graph && !hasLive) { return; }
  var SVG = "http://www.w3.org/2000/svg";
  var points = [];
  var prev = null;
  var fmt = function (n) { return Number(n).toLocaleString("en-US"); };

  function set(key, value) {
    var els = document.querySelectorAll('[data-live="' + key + '"]');
    for (var i = 0; i < els.length; i++) { els[i].textContent = value; }
  }

  function line(cls, values, max, w, h) {
    var p = document.createElementNS(SVG, "polyline");
    var pts = [];
    for (var i = 0; i < values.length; i++) {
      var x = (w * i) / 59;
      var y = h - (h - 4) * (values[i] / max) - 2;
      pts.push(x.toFixed(1) + "," + y.toFixed(1));
    }
    p.setAttribute("points", pts.join(" "));
    p.setAttribute("class", cls);
    return p;
  }

  function draw() {
    if (!graph) { return; }
    var w = 600, h = 140, max = 1;
    for (var i = 0; i < points.length; i++) { max = Math.max(max, points[i][0], points[i][1]); }
    while (graph.firstChild) { graph.removeChild(graph.firstChild); }
    graph.appendChild(line("s", points.map(function (p) { return p[0]; }), max, w, h));
    graph.appendChild(line("f", points.map(function (p) { return p[1]; }), max, w, h));
    var last = points.length ? points[points.length - 1] : [0, 0];
    set("rate", fmt(last[0]) + " succeeded/s, " + fmt(last[1]) + " failed/s (peak " + fmt(max) + ")");
  }

  var es = new EventSource(base + "/events");
  es.onmessage = function (e) {
    var s = JSON.parse(e.data);
    var t = s.totals;
    set("pending", fmt(t.pending)); set("scheduled", fmt(t.scheduled));
    set("processing", fmt(t.processing)); set("failed", fmt(t.failed));
    set("succeeded_total", fmt(t.succeeded_total)); set("failed_total", fmt(t.failed_total));
    set("servers", fmt(s.servers));
    for (var i = 0; i < s.queues.length; i++) {
      var q = s.queues[i];
      set("q:" + q.name + ":pending", fmt(q.pending));
      set("q:" + q.name + ":processing", fmt(q.processing));
      set("q:" + q.name + ":failed", fmt(q.failed));
    }
    if (prev) {
      points.push([Math.max(0, t.succeeded_total - prev[0]), Math.max(0, t.failed_total - prev[1])]);
      if (points.length > 60) { points.shift(); }
    }
    prev = [t.succeeded_total, t.failed_total];
    draw();
  };
})();
