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
    var rows = [
      { name: "Yes (of non-abstain)", value: d.yes_share, bar: d.threshold, barName: "threshold", ok: d.threshold_reached },
      { name: "No with veto (of cast)", value: d.veto_share, bar: d.veto, barName: "veto", ok: !d.vetoed },
      { name: "Turnout (of snapshot)", value: d.turnout, bar: d.quorum, barName: "quorum", ok: d.quorum_reached }
    ];
    var names = rows.map(function (r) { return r.name; });
    var trace = {
      type: "bar",
      orientation: "h",
      y: names,
      x: rows.map(function (r) { return pct(r.value); }),
      text: rows.map(function (r) { return pct(r.value).toFixed(2) + "%"; }),
      textposition: "outside",
      cliponaxis: false,
      marker: { color: rows.map(function (r) { return r.ok ? "#15803d" : "#b91c1c"; }) },
      hovertemplate: "%{y}: %{x:.4f}%<extra></extra>"
    };
    var shapes = [], notes = [];
    rows.forEach(function (r, i) {
      shapes.push({ type: "line", xref: "x", yref: "y", x0: pct(r.bar), x1: pct(r.bar), y0: i - 0.45, y1: i + 0.45,
                    line: { color: "#0f172a", width: 2, dash: "dot" } });
      notes.push({ x: pct(r.bar), y: i + 0.45, xref: "x", yref: "y", text: r.barName + " " + pct(r.bar) + "%",
                   showarrow: false, yanchor: "bottom", font: { size: 11, color: "#334155" } });
    });
    var layout = {
      margin: { l: 160, r: 40, t: 10, b: 36 },
      height: 230,
      xaxis: { range: [0, 105], ticksuffix: "%", zeroline: false, gridcolor: "#e2e8f0" },
      yaxis: { automargin: true },
      shapes: shapes,
      annotations: notes,
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
