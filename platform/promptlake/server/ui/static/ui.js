// promptlake UI: keyboard shortcuts only; every page works without this script.
(function () {
  "use strict";
  function typing(e) {
    var t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/" && !typing(e)) {  // "/" focuses the search box
      var box = document.querySelector("main input[type=search]") || document.querySelector("header input[type=search]");
      if (box) { e.preventDefault(); box.focus(); box.select(); }
      return;
    }
    var review = document.getElementById("review-form");
    if (review) {
      if (typing(e)) {
        if (e.key === "Escape") e.target.blur();
        return;
      }
      var button = review.querySelector('button[data-key="' + e.key + '"]');
      if (e.key === "0") {
        var label = document.getElementById("label-input");
        if (label && !label.disabled) { label.value = "0"; e.preventDefault(); review.requestSubmit(document.getElementById("label-submit")); }
        return;
      }
      if (button && !button.disabled) { e.preventDefault(); review.requestSubmit(button); return; }
      if (e.key === "s" || e.key === "ArrowRight" || e.key === "j") {
        var skip = document.getElementById("skip");
        if (skip) { e.preventDefault(); window.location.href = skip.href; }
        return;
      }
      if (e.key === "l" || e.key === "c") {
        var field = document.getElementById(e.key === "l" ? "label-input" : "comment-input");
        if (field && !field.disabled) { e.preventDefault(); field.focus(); }
        return;
      }
    }
    // sessions list and a thread: j/k move, Enter opens
    if (typing(e)) return;
    var items = Array.prototype.slice.call(document.querySelectorAll("table[data-keynav] tbody tr, .thread .turn"));
    if (!items.length) return;
    var at = items.findIndex(function (el) { return el.classList.contains("selected"); });
    if (e.key === "j" || e.key === "k") {
      e.preventDefault();
      if (at >= 0) items[at].classList.remove("selected");
      at = e.key === "j" ? Math.min(items.length - 1, at + 1) : Math.max(0, at - 1);
      items[at].classList.add("selected");
      items[at].scrollIntoView({ block: "nearest" });
    } else if (e.key === "Enter" && at >= 0) {
      var link = items[at].querySelector("a[href]");
      if (link) window.location.href = link.href;
    }
  });
})();
