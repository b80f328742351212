// Charts speak the page's language: Plotly formats tick numbers and dates
// with a locale's separators and month names. plotly.js ships its locales as
// separate files that the Python package does not carry, so the one this
// site is translated into is registered here (loaded after plotly.min.js,
// before the charts). English needs nothing: it is Plotly's own.
(function () {
  "use strict";
  var lang = (document.documentElement.lang || "en").toLowerCase().split("-")[0];
  if (!window.Plotly || lang !== "id") return;
  window.Plotly.register({
    moduleType: "locale",
    name: "id",
    dictionary: {
      Autoscale: "Skala otomatis",
      "Double-click to zoom back out": "Klik dua kali untuk kembali",
      "Reset axes": "Atur ulang sumbu",
      "Zoom in": "Perbesar",
      "Zoom out": "Perkecil",
    },
    format: {
      days: ["Minggu", "Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu"],
      shortDays: ["Min", "Sen", "Sel", "Rab", "Kam", "Jum", "Sab"],
      months: ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
        "November", "Desember"],
      shortMonths: ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"],
      date: "%d/%m/%Y",
      decimal: ",",
      thousands: ".",
    },
  });
  window.Plotly.setPlotConfig({ locale: "id" });
})();
