// The tally chart on a proposal page. The numbers come from the data-chart
// attribute of #tally, which the server re-renders on every vote (htmx response or
// the live WebSocket push); this file only draws them.
(function () {
  "use strict";

  function pct(ppm) { return ppm / 10000; }  // display only: decisions are made server-side in integers

  function draw() {
    var holder = document.getElementById("tally-chart");
    var island = document.getElementById("tally");
    if (!holder || !island || !island.dataset.chart || !window.Plotly) { return; }
    var d = JSON.parse(island.dataset.chart);
    var t = d.text;
    // Labels in the page's language (Django's JavaScript catalogue).
    var gettext = window.gettext || function (s) { return s; };
    var fmt = function (s, o) { return s.replace(/%\((\w+)\)s/g, function (_, k) { return o[k]; }); };
    var rows = [
      { name: fmt(gettext("Yes · must exceed %(bar)s"), { bar: t.threshold }), value: d.yes_share, text: fmt(gettext("%(share)s of non-abstain"), { share: t.yes_share }), bar: d.threshold, ok: d.threshold_reached },
      { name: fmt(gettext("No with veto · vetoes at %(bar)s"), { bar: t.veto }), value: d.veto_share, text: fmt(gettext("%(share)s of cast"), { share: t.veto_share }), bar: d.veto, ok: !d.vetoed },
      { name: fmt(gettext("Turnout · quorum %(bar)s"), { bar: t.quorum }), value: d.turnout, text: fmt(gettext("%(share)s of snapshot"), { share: t.turnout }), bar: d.quorum, ok: d.quorum_reached }
    ];
    var trace = {
      type: "bar",
      orientation: "h",
      y: rows.map(function (r) { return r.name; }),
      x: rows.map(function (r) { return pct(r.value); }),
      text: rows.map(function (r) { return r.text; }),
      textposition: "outside",
      cliponaxis: false,
      marker: { color: rows.map(function (r) { return r.ok ? "#15803d" : "#b91c1c"; }) },
      hoverinfo: "text"
    };
    // The bar each share is judged against: a dotted marker across its row.
    var shapes = rows.map(function (r, i) {
      return { type: "line", xref: "x", yref: "y", x0: pct(r.bar), x1: pct(r.bar), y0: i - 0.42, y1: i + 0.42,
               line: { color: "#0f172a", width: 2, dash: "dot" } };
    });
    var layout = {
      margin: { l: 10, r: 20, t: 10, b: 36 },
      height: 220,
      bargap: 0.35,
      xaxis: { range: [0, 130], tickvals: [0, 20, 40, 60, 80, 100], ticktext: ["0%", "20%", "40%", "60%", "80%", "100%"], zeroline: false, gridcolor: "#e2e8f0" },
      yaxis: { automargin: true, ticksuffix: "   " },
      shapes: shapes,
      showlegend: false,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: "system-ui, sans-serif", size: 12 }
    };
    window.Plotly.react(holder, [trace], layout, { displayModeBar: false, responsive: true });
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "tally") { draw(); }
  });
  document.addEventListener("htmx:afterSettle", draw);
})();
