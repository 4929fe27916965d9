// Studio's only script of its own; no inline scripts anywhere, so a strict CSP can hold.
(function () {
  "use strict";
  // A "job-created" event can reach a tab whose gallery already shows that job (it was
  // rendered after the job was created): drop the duplicate instead of inserting it twice.
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    if (event.detail.type !== "job-created") return;
    var match = /id="(job-\d+)"/.exec(event.detail.data || "");
    if (match && document.getElementById(match[1])) event.preventDefault();
  });
  // The empty-gallery notice goes once the first card arrives.
  document.addEventListener("htmx:sseMessage", function (event) {
    if (event.detail.type !== "job-created") return;
    var empty = document.querySelector("#gallery .empty");
    if (empty) empty.remove();
  });
})();
