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

// Lightbox: links marked data-lightbox open their image in a <dialog> instead of navigating.
// Without JavaScript they simply open the full-size file.
(function () {
  "use strict";
  var dialog;
  function ensureDialog() {
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.className = "lightbox";
    dialog.innerHTML = '<img alt=""><div class="lightbox-bar"><a class="lightbox-detail" href="#">Open job</a><button type="button" class="lightbox-close">Close ✕</button></div>';
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog || event.target.classList.contains("lightbox-close")) dialog.close();
    });
    document.body.appendChild(dialog);
    return dialog;
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-lightbox]");
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    var box = ensureDialog();
    var inner = link.querySelector("img");
    box.querySelector("img").src = link.href;
    box.querySelector("img").alt = inner ? inner.alt : "";
    var detail = box.querySelector(".lightbox-detail");
    detail.hidden = !link.dataset.detail;
    if (link.dataset.detail) detail.href = link.dataset.detail;
    box.showModal();
  });
})();

// Copy buttons: [data-copy] puts its value on the clipboard (the seed of a job).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) return;
    navigator.clipboard.writeText(button.dataset.copy).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });
  // Enter in a picker's search box searches; it must not submit the job form around it.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches && event.target.matches(".asset-search")) {
      event.preventDefault();
    }
  });
})();
