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
})();
