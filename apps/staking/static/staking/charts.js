// Stake and rewards over time on the delegator's page. Amounts arrive as
// micro-ATH strings; they are converted to ATH only for drawing.
(function () {
  "use strict";
  function draw() {
    var node = document.getElementById("staking-chart-data");
    if (!node || !window.Plotly) { return; }
    var data = JSON.parse(node.textContent);
    var gettext = window.gettext || function (s) { return s; };
    var toAth = function (micro) { return Number(BigInt(micro) / 1000n) / 1000; };
    // A time axis over one moment (or a few seconds) would tick in
    // milliseconds: under an hour of data, show the hour around it.
    var timeAxis = function (times) {
      var ms = times.map(function (t) { return Date.parse(t); }).filter(isFinite);
      if (!ms.length) { return { type: "date" }; }
      var lo = Math.min.apply(null, ms), hi = Math.max.apply(null, ms);
      if (hi - lo >= 3600e3) { return { type: "date" }; }
      var mid = (lo + hi) / 2;
      return { type: "date", tickformat: "%H:%M", range: [new Date(mid - 1800e3).toISOString(), new Date(mid + 1800e3).toISOString()] };
    };
    var layout = function (title, times) {
      return { margin: { t: 10, r: 10, b: 40, l: 60 }, yaxis: { title: { text: title }, rangemode: "tozero" },
               xaxis: timeAxis(times || []), legend: { orientation: "h", y: -0.2 }, height: 280 };
    };
    var cfg = { displayModeBar: false, responsive: true };
    var stake = data.stake || [];
    if (stake.length) {
      // Carry the latest balances to now, so the last change is not drawn on the edge.
      var last = stake[stake.length - 1];
      stake = stake.concat([{ t: new Date().toISOString(), bonded: last.bonded, unbonding: last.unbonding }]);
      var t = stake.map(function (p) { return p.t; });
      Plotly.newPlot("stake-chart", [
        { x: t, y: stake.map(function (p) { return toAth(p.bonded); }), name: gettext("Bonded"), type: "scatter", mode: "lines", line: { shape: "hv" } },
        { x: t, y: stake.map(function (p) { return toAth(p.unbonding); }), name: gettext("Unbonding"), type: "scatter", mode: "lines", line: { shape: "hv" } }
      ], layout("ATH", t), cfg);
    } else {
      document.getElementById("stake-chart").textContent = gettext("No staking history yet.");
    }
    var rewards = data.rewards || [];
    var x = rewards.map(function (p) { return p.t; });
    var y = rewards.map(function (p) { return toAth(p.cumulative); });
    var pending = toAth(data.pending || "0");
    if (rewards.length || pending > 0) {
      var traces = [{ x: x, y: y, name: gettext("Received"), type: "scatter", mode: "lines+markers", line: { shape: "hv" } }];
      if (pending > 0) {
        var now = new Date().toISOString();
        traces.push({ x: [now], y: [(y.length ? y[y.length - 1] : 0) + pending], name: gettext("Received + pending"), type: "scatter", mode: "markers" });
      }
      Plotly.newPlot("rewards-chart", traces, layout("ATH", x.concat(traces.length > 1 ? traces[1].x : [])), cfg);
    } else {
      document.getElementById("rewards-chart").textContent = gettext("No rewards yet: they accrue from the epoch after you delegate.");
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
