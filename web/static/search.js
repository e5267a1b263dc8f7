// Search landing: /assets/<id>?t=12.4&q=rings opens the player at that second and
// highlights the searched words in the transcript (docs/web.md, "Search").
(function () {
  "use strict";
  function norm(s) {
    return s.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();
  }
  document.addEventListener("DOMContentLoaded", function () {
    var params = new URLSearchParams(location.search);
    var t = parseFloat(params.get("t") || "");
    var tokens = norm(params.get("q") || "").split(" ").filter(Boolean);
    var player = document.getElementById("player");
    if (player && isFinite(t) && t >= 0) {
      var go = function () { player.currentTime = t; };
      if (player.readyState >= 1) go(); else player.addEventListener("loadedmetadata", go, { once: true });
    }
    if (!tokens.length) return;
    var first = null;
    document.querySelectorAll(".transcript .w").forEach(function (el) {
      var w = norm(el.textContent || "");
      if (tokens.some(function (tok) { return w.split(" ").some(function (p) { return p.indexOf(tok) === 0; }); })) {
        el.classList.add("hit");
        var start = parseFloat(el.dataset.t || "0");
        if (!first || (isFinite(t) && Math.abs(start - t) < Math.abs(parseFloat(first.dataset.t || "0") - t))) first = el;
      }
    });
    if (first) first.scrollIntoView({ block: "nearest" });
  });
})();
