// The bell's live count: its own socket (not htmx's), so a page's
// "live" state still means the page's own feed has connected.
(function () {
  var bell = document.querySelector("[data-bell-ws]");
  if (!bell || !window.WebSocket) return;
  var delay = 1000;
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + bell.getAttribute("data-bell-ws"));
    socket.onopen = function () { delay = 1000; bell.setAttribute("data-bell-live", "connected"); };
    socket.onmessage = function (event) {
      var holder = document.createElement("div");
      holder.innerHTML = event.data;
      var fresh = holder.querySelector("#bell-count");
      var count = document.getElementById("bell-count");
      if (fresh && count) count.textContent = fresh.textContent;
    };
    socket.onclose = function () {
      bell.setAttribute("data-bell-live", "reconnecting");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
