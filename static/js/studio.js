// Studio's shell script; no inline scripts anywhere, so a strict CSP can hold. Every page also
// works without it (links and forms are real), this only makes them nicer.
(function () {
  "use strict";
  // A "job-created" event can reach a tab whose gallery already shows that job (it was
  // rendered after the job was created): drop the duplicate instead of inserting it twice.
  // A "job-done" toast is shown once per job, whichever tab or page saw it first.
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var type = event.detail.type;
    if (type === "job-created") {
      var match = /id="(job-\d+)"/.exec(event.detail.data || "");
      if (match && document.getElementById(match[1])) event.preventDefault();
    } else if (type === "job-done") {
      var done = /data-toast="(\d+)"/.exec(event.detail.data || "");
      if (!done || !toastOnce(done[1])) event.preventDefault();
    }
  });
  // The empty-gallery notice goes once the first card arrives.
  document.addEventListener("htmx:sseMessage", function (event) {
    if (event.detail.type !== "job-created") return;
    var empty = document.querySelector("#gallery .empty");
    if (empty) empty.remove();
  });

  function toastOnce(jobId) {
    var key = "studio-toasted";
    try {
      var seen = JSON.parse(window.localStorage.getItem(key) || "[]");
      if (seen.indexOf(jobId) !== -1) return false;
      seen.push(jobId);
      window.localStorage.setItem(key, JSON.stringify(seen.slice(-200)));
    } catch (error) { /* storage refused: show it */ }
    return true;
  }

  // Toasts close themselves after a while, or on their ✕.
  document.addEventListener("htmx:load", function (event) {
    var toast = event.detail.elt;
    if (!toast.matches || !toast.matches(".toast")) return;
    window.setTimeout(function () { toast.remove(); }, 9000);
  });
  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("[data-toast-close]");
    if (close) close.closest(".toast").remove();
  });
})();

// Navigation: the menu button below laptop width; menus close on Escape or a click elsewhere.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest(".nav-toggle");
    if (toggle) {
      var bar = toggle.closest(".topbar");
      var open = !bar.classList.contains("nav-open");
      bar.classList.toggle("nav-open", open);
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) { menu.removeAttribute("open"); });
  });
})();

// Theme: auto (the system's) → light → dark → auto; the choice is kept in this browser.
(function () {
  "use strict";
  var order = ["auto", "light", "dark"];
  function current() { return document.documentElement.getAttribute("data-theme") || "auto"; }
  function label(button) {
    var theme = current();
    var words = { auto: "follows the system", light: "light", dark: "dark" };
    button.textContent = "Theme: " + theme;
    button.title = "Colour theme: " + words[theme] + "; click to change";
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-theme-toggle]");
    if (!button) return;
    var next = order[(order.indexOf(current()) + 1) % order.length];
    try {
      if (next === "auto") window.localStorage.removeItem("studio-theme");
      else window.localStorage.setItem("studio-theme", next);
    } catch (error) { /* not kept, still applied */ }
    if (next === "auto") document.documentElement.removeAttribute("data-theme");
    else document.documentElement.setAttribute("data-theme", next);
    label(button);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-theme-toggle]").forEach(label);
  });
})();

// Keyboard: "?" shows the shortcut list; g g / g r go to the gallery / review queue; n starts
// a text → image job. Never while typing.
(function () {
  "use strict";
  var pendingG = false;
  function typing(target) {
    if (!target) return false;
    if (target.tagName === "INPUT") return !/^(range|checkbox|radio|button|submit|reset|color)$/.test(target.type);
    return target.isContentEditable || /^(TEXTAREA|SELECT)$/.test(target.tagName);
  }
  function overlay() { return document.getElementById("shortcuts"); }
  function toggleOverlay() {
    var dialog = overlay();
    if (!dialog) return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-shortcuts-open]")) toggleOverlay();
  });
  document.addEventListener("keydown", function (event) {
    if (event.metaKey || event.ctrlKey || event.altKey || typing(event.target)) return;
    if (event.key === "?") { event.preventDefault(); toggleOverlay(); return; }
    if (document.querySelector("dialog[open]")) return;
    if (pendingG) {
      pendingG = false;
      if (event.key === "g") window.location.href = "/";
      else if (event.key === "r") window.location.href = "/review/";
      return;
    }
    if (event.key === "g") { pendingG = true; window.setTimeout(function () { pendingG = false; }, 1200); return; }
    if (event.key === "n" && !document.querySelector("[data-review-queue]")) {
      var link = document.querySelector("a[href='/jobs/new/text-to-image/']");
      if (link) window.location.href = link.getAttribute("href");
    }
  });
})();

// Forms marked data-confirm ask first (cancelling a job cannot be undone).
document.addEventListener("submit", function (event) {
  "use strict";
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

// Copy buttons: [data-copy] copies its data-copy text (a prompt, a seed) to the clipboard.
(function () {
  "use strict";
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { area.remove(); }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    var done = function () {
      var before = button.textContent;
      button.textContent = "Copied";
      button.classList.add("done");
      window.setTimeout(function () { button.textContent = before; button.classList.remove("done"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else {
      fallback(text);
      done();
    }
  });
})();

// Running jobs: the elapsed time ticks every second (cards are re-rendered live, so the
// elements are looked up on each tick).
(function () {
  "use strict";
  function format(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-elapsed-since]").forEach(function (el) {
      var since = Date.parse(el.getAttribute("data-elapsed-since"));
      if (!isNaN(since)) el.textContent = format((now - since) / 1000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 1000);
  });
  document.addEventListener("htmx:load", tick);
})();

// 3D on demand: a poster first; model-viewer (a large module) is fetched and mounted only
// when someone asks to see the model.
(function () {
  "use strict";
  var loading = null;
  function loadViewer() {
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.type = "module";
        script.src = document.body.getAttribute("data-model-viewer");
        script.onload = resolve;
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return loading;
  }
  window.studioMountModel = function (poster) {
    var viewer = document.createElement("model-viewer");
    viewer.setAttribute("src", poster.getAttribute("data-model-src"));
    viewer.setAttribute("camera-controls", "");
    viewer.setAttribute("alt", poster.getAttribute("data-model-alt") || "3D model");
    viewer.setAttribute("shadow-intensity", "0.6");
    if (poster.parentElement.classList.contains("model-stage")) {
      poster.replaceWith(viewer);
    } else {
      var stage = document.createElement("div");
      stage.className = "model-stage";
      stage.appendChild(viewer);
      poster.replaceWith(stage);
    }
    return loadViewer().then(function () { return viewer; });
  };
  document.addEventListener("click", function (event) {
    var poster = event.target.closest && event.target.closest("[data-model-src]");
    if (!poster) return;
    event.preventDefault();
    var group = poster.getAttribute("data-model-group");
    var posters = group
      ? document.querySelectorAll("[data-model-src][data-model-group='" + group + "']")
      : [poster];
    Array.prototype.forEach.call(posters, window.studioMountModel);
  });
})();

// Media pickers (copy buttons, seeds included, are handled once above).
(function () {
  "use strict";
  // Enter in a picker's search box searches; it must not submit the job form around it.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches && event.target.matches(".asset-search")) {
      event.preventDefault();
    }
  });
})();
