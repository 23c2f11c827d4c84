// weft console: the pages are complete without this script. It keeps an
// open page live by fetching it again every data-refresh milliseconds and
// swapping in its <main>, unless the person is typing into a form on it.
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh"), 10) || 10000;
  var live = document.getElementById("live");
  var stale = document.getElementById("stale");
  if (!live) return; // the login and error pages do not refresh
  if (localStorage.getItem("weft-live") === "off") live.checked = false;
  live.addEventListener("change", function () {
    localStorage.setItem("weft-live", live.checked ? "on" : "off");
  });

  function busy(main) {
    var active = document.activeElement;
    if (active && main.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) return true;
    var fields = main.querySelectorAll("form.ack input[name=reason]");
    for (var i = 0; i < fields.length; i++) if (fields[i].value !== "") return true;
    return false;
  }

  function say(text) {
    stale.textContent = text;
    stale.hidden = text === "";
  }

  function refresh() {
    var main = document.getElementById("main");
    if (!live.checked || document.hidden || busy(main)) return schedule();
    fetch(location.href, { credentials: "same-origin", cache: "no-store", headers: { "X-Weft-Refresh": "1" } })
      .then(function (res) {
        if (res.redirected && new URL(res.url).pathname === "/login") {
          say("Your session ended: reload to log in again.");
          live.checked = false;
          return null;
        }
        return res.text();
      })
      .then(function (html) {
        if (html === null) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("main");
        if (next && !busy(main)) {
          var open = {};
          main.querySelectorAll("details[open]").forEach(function (d, i) { open[i] = true; });
          main.innerHTML = next.innerHTML;
          main.querySelectorAll("details").forEach(function (d, i) { if (open[i]) d.open = true; });
        }
        var updated = doc.getElementById("updated");
        if (updated) document.getElementById("updated").textContent = updated.textContent;
        say("");
        schedule();
      })
      .catch(function () {
        say("weft did not answer; retrying.");
        schedule();
      });
  }

  function schedule() { setTimeout(refresh, every); }
  schedule();
})();
