// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
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
})();
