// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // The page's language (Django's JavaScript catalogue, loaded before this file).
  var gettext = window.gettext || String;
  // Flash rows that a live update just brought in.
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "tx-rows" && target.firstElementChild) {
      target.firstElementChild.classList.add("flash");
    }
  });
  // Say whether the page's live feed is connected, so the "live" marker can
  // go grey while the socket is down (htmx reconnects on its own).
  function setLive(state) { document.documentElement.dataset.live = state; }
  document.addEventListener("htmx:wsOpen", function () { setLive("connected"); });
  document.addEventListener("htmx:wsClose", function () { setLive("reconnecting"); });
  // Count down to a moment ([data-countdown] holds it in ISO 8601), in the
  // page's language; the server's wording stays until the first tick.
  function tick() {
    var lang = document.documentElement.lang || "en";
    var words = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(lang, { numeric: "auto" }) : null;
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.round((Date.parse(el.dataset.countdown) - Date.now()) / 1000);
      if (!words || isNaN(left)) return;
      var h = Math.floor(Math.abs(left) / 3600), m = Math.floor((Math.abs(left) % 3600) / 60), s = Math.abs(left) % 60;
      var text = h ? words.format(Math.sign(left) * h, "hour") : m ? words.format(Math.sign(left) * m, "minute") : words.format(left, "second");
      if (h && m) text += " " + m + " " + gettext("min");
      el.textContent = "⏱ " + text;
    });
  }
  if (document.querySelector("[data-countdown]")) { tick(); setInterval(tick, 1000); }
})();
