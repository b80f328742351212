// Stake and rewards over time on the delegator's page. Amounts arrive as
// micro-ATH strings; they are converted to ATH only for drawing.
(function () {
  "use strict";
  function draw() {
    var node = document.getElementById("staking-chart-data");
    if (!node || !window.Plotly) { return; }
    var data = JSON.parse(node.textContent);
    var toAth = function (micro) { return Number(BigInt(micro) / 1000n) / 1000; };
    var layout = function (title) {
      return { margin: { t: 10, r: 10, b: 40, l: 60 }, yaxis: { title: { text: title }, rangemode: "tozero" },
               legend: { orientation: "h", y: -0.2 }, height: 280 };
    };
    var cfg = { displayModeBar: false, responsive: true };
    var stake = data.stake || [];
    if (stake.length) {
      // Carry the latest balances to now, so the last change is not drawn on the edge.
      var last = stake[stake.length - 1];
      stake = stake.concat([{ t: new Date().toISOString(), bonded: last.bonded, unbonding: last.unbonding }]);
      var t = stake.map(function (p) { return p.t; });
      Plotly.newPlot("stake-chart", [
        { x: t, y: stake.map(function (p) { return toAth(p.bonded); }), name: "Bonded", type: "scatter", mode: "lines", line: { shape: "hv" } },
        { x: t, y: stake.map(function (p) { return toAth(p.unbonding); }), name: "Unbonding", type: "scatter", mode: "lines", line: { shape: "hv" } }
      ], layout("ATH"), cfg);
    } else {
      document.getElementById("stake-chart").textContent = "No staking history yet.";
    }
    var rewards = data.rewards || [];
    var x = rewards.map(function (p) { return p.t; });
    var y = rewards.map(function (p) { return toAth(p.cumulative); });
    var pending = toAth(data.pending || "0");
    if (rewards.length || pending > 0) {
      var traces = [{ x: x, y: y, name: "Received", type: "scatter", mode: "lines+markers", line: { shape: "hv" } }];
      if (pending > 0) {
        var now = new Date().toISOString();
        traces.push({ x: [now], y: [(y.length ? y[y.length - 1] : 0) + pending], name: "Received + pending", type: "scatter", mode: "markers" });
      }
      Plotly.newPlot("rewards-chart", traces, layout("ATH"), cfg);
    } else {
      document.getElementById("rewards-chart").textContent = "No rewards yet: they accrue from the epoch after you delegate.";
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
