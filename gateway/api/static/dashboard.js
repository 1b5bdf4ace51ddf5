// Keeps a dashboard page current without reloading it: every data-refresh seconds, fetch the same URL and
// swap in its [data-live] part. A failed fetch shows the "stale" notice and keeps trying; a lost session
// (the server redirects to /login) goes to the sign-in page. No library, nothing from the internet.
(function () {
  "use strict";
  var main = document.querySelector("main[data-refresh]");
  if (!main || !window.fetch || !window.DOMParser) { return; }
  var seconds = Math.max(2, parseInt(main.getAttribute("data-refresh"), 10) || 5);
  var stale = document.querySelector("[data-stale]");
  var busy = false;

  function setStale(on) { if (stale) { stale.hidden = !on; } }

  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected && new URL(response.url).pathname === "/login") {
          window.location.assign(response.url);
          return null;
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.querySelector("[data-live]");
        var live = document.querySelector("[data-live]");
        if (fresh && live) {
          live.replaceWith(document.importNode(fresh, true));
          document.title = page.title;
        }
        setStale(false);
      })
      .catch(function () { setStale(true); })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { refresh(); } });
}());
