// George dashboard: live updates with EventSource, no framework. Every element with
// `data-live-src` is re-rendered from that URL (an HTML fragment) when the server's
// `/live` stream says something it shows changed. Without this script, pages show the
// state at load.
(function () {
  "use strict";
  var base = document.body && document.body.getAttribute("data-base");
  var regions = document.querySelectorAll("[data-live-src]");
  if (!base || !regions.length || !window.EventSource || !window.fetch) return;
  var job = regions[0].getAttribute("data-live-job") || "";
  var url = base + "/live" + (job ? "?job=" + encodeURIComponent(job) : "");
  var busy = false;
  var again = false;

  // A region whose form someone is filling in is left alone until the next change.
  function editing(el) {
    var fields = el.querySelectorAll("textarea, input[type=text], select");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i] === document.activeElement || (fields[i].tagName === "TEXTAREA" && fields[i].value)) {
        return true;
      }
    }
    return false;
  }

  function load(el) {
    if (editing(el)) return Promise.resolve();
    return fetch(el.getAttribute("data-live-src"), {
      credentials: "same-origin",
      headers: { "Accept": "text/html" }
    }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      el.innerHTML = html;
      el.setAttribute("data-live-at", String(Date.now()));
    });
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    Promise.all(Array.prototype.map.call(regions, load))
      .catch(function () { /* the next change retries */ })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  var lost = false;
  var source = new EventSource(url);
  source.addEventListener("change", refresh);
  source.addEventListener("open", function () {
    document.body.setAttribute("data-live", "on");
    if (lost) { lost = false; refresh(); }
  });
  source.addEventListener("error", function () {
    lost = true;
    document.body.setAttribute("data-live", "off");
  });
})();
