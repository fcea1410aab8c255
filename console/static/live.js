// Warden console: the live view of a session (page_live.html). The player
// reads the session from /sessions/ID/live over a same-origin WebSocket
// (asciicast v2 events), with no buffering delay: what the host prints
// shows at once. Markers from the server say frames were dropped because
// this browser fell behind.
"use strict";
(function () {
  var el = document.getElementById("warden-live");
  if (!el) return;
  var notice = document.getElementById("warden-live-notice");
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  var url = scheme + location.host + el.getAttribute("data-ws-path");
  var player = AsciinemaPlayer.create(
    { driver: "websocket", url: url, bufferTime: 0 },
    el,
    {
      cols: parseInt(el.getAttribute("data-cols"), 10) || 80,
      rows: parseInt(el.getAttribute("data-rows"), 10) || 24,
      autoPlay: true,
      fit: "width",
    }
  );
  // CONTRACT §7: tests and tools reach the player here.
  window.wardenPlayer = player;
  player.addEventListener("marker", function (m) {
    var label = typeof m === "string" ? m : (m && m.label) || "";
    if (notice && label) notice.textContent = label;
  });
  player.addEventListener("ended", function () {
    if (notice) notice.textContent = "The live view ended.";
    el.setAttribute("data-warden-ended", "true");
  });

  // Kill: the button opens a form that asks for a reason and a second,
  // explicit confirmation; the form posts with the page's CSRF token.
  var open = document.getElementById("warden-kill-open");
  var form = document.getElementById("warden-kill-form");
  var cancel = document.getElementById("warden-kill-cancel");
  if (open && form) {
    open.addEventListener("click", function () {
      form.hidden = false;
      open.hidden = true;
      var reason = document.getElementById("warden-kill-reason");
      if (reason) reason.focus();
    });
  }
  if (cancel && form && open) {
    cancel.addEventListener("click", function () {
      form.hidden = true;
      open.hidden = false;
    });
  }
})();
