// Plotly charts fed by JSON islands (<script type="application/json">), so
// pages need no inline script (CSP) and live updates can replace the data:
// when htmx swaps a JSON island in over the WebSocket, its charts redraw.
(function () {
  "use strict";
  // Labels in the page's language (Django's JavaScript catalogue, loaded
  // before this file); English where it is missing.
  var gettext = window.gettext || function (s) { return s; };
  function fmt(s, o) { return s.replace(/%\((\w+)\)s/g, function (_, k) { return o[k]; }); }
  var layoutBase = {
    margin: { l: 52, r: 16, t: 36, b: 44 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, sans-serif", size: 12, color: "#334155" },
    // Above the plot: below it, the legend ran into the x-axis title.
    legend: { orientation: "h", x: 0, y: 1, xanchor: "left", yanchor: "bottom" },
  };
  var config = { displayModeBar: false, responsive: true };

  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function merge(a, b) { var o = {}; var k; for (k in a) o[k] = a[k]; for (k in b) o[k] = b[k]; return o; }
  // plotly.js 3 draws only { text: ... } axis titles; the charts below may
  // write the short string form, turned into the long one here.
  function titled(layout) {
    Object.keys(layout).forEach(function (k) {
      if (/^[xy]axis\d*$/.test(k) && typeof layout[k].title === "string") {
        layout[k] = merge(layout[k], { title: { text: layout[k].title } });
      }
    });
    return layout;
  }
  // Epoch axes: whole epochs only; the page sends the tick spacing with the
  // data (apps/core/charts.py), this is the fallback without it.
  function epochAxis(d) { return merge({ title: { text: gettext("epoch") }, tickformat: "d", dtick: 1 }, d.epoch_axis || {}); }

  var charts = {
    "region-map": function (d) {
      // A world map (geometry shipped with the app, see draw()), one bubble a
      // region sized by its GPUs. Labels alternate above and below by
      // longitude so neighbours (Europe's three regions) do not overprint.
      var rows = d.by_region.slice().sort(function (a, b) { return Number(a.lon) - Number(b.lon); });
      return [[{
        type: "scattergeo", mode: "markers+text",
        lon: rows.map(function (r) { return Number(r.lon); }),
        lat: rows.map(function (r) { return Number(r.lat); }),
        text: rows.map(function (r) { return r.code + " · " + r.gpus; }),
        textposition: rows.map(function (r, i) { return i % 2 ? "bottom center" : "top center"; }),
        textfont: { size: 11, color: "#0f172a" },
        marker: { size: rows.map(function (r) { return 7 + Math.sqrt(r.gpus) * 1.6; }), color: "#0891b2", opacity: 0.75, line: { color: "#ffffff", width: 1 } },
        hovertext: rows.map(function (r) { return fmt(gettext("%(name)s: %(gpus)s GPUs on %(nodes)s nodes"), r); }),
        hoverinfo: "text",
      }], {
        margin: { l: 0, r: 0, t: 8, b: 0 },
        geo: {
          projection: { type: "natural earth" }, resolution: 110, showframe: false,
          showland: true, landcolor: "#e2e8f0", showocean: true, oceancolor: "#f8fafc",
          showcountries: true, countrycolor: "#cbd5e1", coastlinecolor: "#94a3b8",
          lataxis: { range: [-58, 78] }, bgcolor: "rgba(0,0,0,0)",
        },
      }];
    },
    "model-bars": function (d) {
      return [[{ type: "bar", x: d.by_model.map(function (r) { return r.model.replace("NVIDIA ", ""); }), y: d.by_model.map(function (r) { return r.gpus; }), marker: { color: "#22d3ee" } }],
        { yaxis: { title: gettext("GPUs online") } }];
    },
    "node-uptime": function (d) {
      return [[
        { x: d.epochs, y: d.uptime, name: gettext("uptime %"), mode: "lines+markers", line: { color: "#15803d" } },
        { x: d.epochs, y: d.health, name: gettext("health %"), mode: "lines", line: { color: "#0891b2", dash: "dot" } },
      ], { xaxis: epochAxis(d), yaxis: { range: [0, 105] } }];
    },
    "node-latency": function (d) {
      return [[{ x: d.epochs, y: d.latency, name: gettext("latency ms"), mode: "lines+markers", line: { color: "#b45309" } }], { xaxis: epochAxis(d), yaxis: { title: "ms", rangemode: "tozero" } }];
    },
    "node-telemetry": function (d) {
      return [[
        { x: d.sample_times, y: d.sample_util, name: gettext("GPU util %"), mode: "lines", line: { color: "#0891b2" } },
        { x: d.sample_times, y: d.sample_temp, name: gettext("temperature °C"), mode: "lines", yaxis: "y2", line: { color: "#b91c1c" } },
      ], { yaxis: { range: [0, 100], title: "%" }, yaxis2: { overlaying: "y", side: "right", title: "°C", range: [20, 100] }, margin: { l: 52, r: 52, t: 36, b: 44 } }];
    },
    "emission-split": function (d) {
      return [[
        { type: "bar", x: d.epochs, y: d.providers, name: gettext("providers"), marker: { color: "#0891b2" } },
        { type: "bar", x: d.epochs, y: d.checkers, name: gettext("checkers"), marker: { color: "#22d3ee" } },
        { type: "bar", x: d.epochs, y: d.community, name: gettext("community pool"), marker: { color: "#94a3b8" } },
      ], { barmode: "stack", xaxis: epochAxis(d), yaxis: { title: "ATH" } }];
    },
    "sla-breaches": function (d) {
      return [[{ type: "bar", x: d.epochs, y: d.breaches, name: gettext("SLA breaches"), marker: { color: "#b45309" } }], { xaxis: epochAxis(d), yaxis: { rangemode: "tozero" } }];
    },
    "top-earners": function (d) {
      return [[{ type: "bar", orientation: "h", y: d.top_names.slice().reverse(), x: d.top_totals.slice().reverse(), marker: { color: "#15803d" } }], { xaxis: { title: gettext("ATH earned") }, margin: { l: 120, r: 16, t: 16, b: 44 } }];
    },
    "checker-reports": function (d) {
      return [[
        { type: "bar", x: d.epochs, y: d.correct, name: gettext("correct"), marker: { color: "#15803d" } },
        { type: "bar", x: d.epochs, y: d.incorrect, name: gettext("incorrect"), marker: { color: "#b91c1c" } },
        { type: "scatter", x: d.epochs, y: d.assigned, name: gettext("assigned"), mode: "lines", line: { color: "#64748b" } },
      ], { barmode: "stack", xaxis: epochAxis(d) }];
    },
    // Marketplace: a provider's capacity rewards, rental earnings and SLA credits per epoch (ATH as exact decimal strings).
    "provider-earnings": function (d) {
      return [[
        { type: "bar", x: d.epochs, y: (d.rewards || []).map(Number), name: gettext("capacity rewards (ATH)"), marker: { color: "#2563eb" } },
        { type: "bar", x: d.epochs, y: d.earned.map(Number), name: gettext("rental earnings (ATH)"), marker: { color: "#15803d" } },
        { type: "bar", x: d.epochs, y: d.credits.map(function (v) { return -Number(v); }), name: gettext("SLA credits paid (ATH)"), marker: { color: "#b91c1c" } },
      ], { barmode: "relative", xaxis: epochAxis(d), yaxis: { title: "ATH" } }];
    },
  };

  function draw(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      var d = data(el.dataset.source);
      var make = charts[el.dataset.chart];
      if (!d || !make) return;
      var spec = make(d);
      // A chart with no point at all would draw bare axes (-1 to 6): say why instead.
      var points = spec[0].reduce(function (n, t) { return n + ((t.x || t.lon || t.values || t.y || []).length); }, 0);
      if (!points) {
        if (window.Plotly.purge) window.Plotly.purge(el);
        var note = document.getElementById("chart-empty-text");
        el.classList.add("chart-empty");
        el.textContent = el.dataset.empty || (note ? (note.content || note).textContent : gettext("No data yet."));
        return;
      }
      if (el.classList.contains("chart-empty")) { el.textContent = ""; el.classList.remove("chart-empty"); }
      // Map geometry comes from this site (data-topojson), never plotly's CDN.
      var conf = el.dataset.topojson ? merge(config, { topojsonURL: el.dataset.topojson }) : config;
      window.Plotly.react(el, spec[0], titled(merge(layoutBase, spec[1])), conf);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(); });
  document.addEventListener("htmx:wsAfterMessage", function () { draw(); });
  window.aethirCharts = { draw: draw };
})();
