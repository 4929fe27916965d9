// Review screens: the queue's keyboard, gallery bulk selection, the compare slider.
// No inline scripts anywhere (a strict CSP can hold); every page also works without this file.

// The review queue: arrows (or j/k) move between outputs, a/c/r decide the open one.
(function () {
  "use strict";

  function queue() { return document.querySelector("[data-review-queue]"); }
  function items() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue-items .queue-item:not(.decided)"));
  }
  function current() { return document.querySelector("#queue-items .queue-item.current"); }
  function panelOutput() {
    var panel = document.getElementById("review-panel");
    return panel ? panel.getAttribute("data-output") : null;
  }

  function select(item, load) {
    if (!item) return;
    items().forEach(function (other) { other.classList.remove("current"); });
    document.querySelectorAll("#queue-items .queue-item.current").forEach(function (other) {
      other.classList.remove("current");
    });
    item.classList.add("current");
    item.scrollIntoView({ block: "nearest" });
    var link = item.querySelector("a.queue-link");
    if (load && link && item.getAttribute("data-output") !== panelOutput()) {
      htmx.ajax("GET", link.getAttribute("hx-get"), { target: "#review-panel", swap: "outerHTML" });
    }
  }

  function move(step) {
    var list = items();
    if (!list.length) return;
    var at = list.indexOf(current());
    var next = at === -1 ? list[0] : list[Math.min(list.length - 1, Math.max(0, at + step))];
    select(next, true);
  }

  // After a decision, the next pending output opens by itself.
  function advance(outputId) {
    var decided = document.getElementById("queue-item-" + outputId);
    var list = items();
    var after = null;
    if (decided) {
      var all = Array.prototype.slice.call(document.querySelectorAll("#queue-items .queue-item"));
      var index = all.indexOf(decided);
      for (var i = index + 1; i < all.length; i++) {
        if (!all[i].classList.contains("decided")) { after = all[i]; break; }
      }
      decided.classList.add("decided");
    }
    select(after || list.filter(function (item) { return item !== decided; })[0], true);
  }

  document.addEventListener("review-decided", function (event) {
    if (!queue()) return;
    var detail = event.detail || {};
    if (detail.state === "pending") return;
    setTimeout(function () { advance(detail.output); }, 350);
  });

  // Clicking an item marks it current (htmx loads the panel).
  document.addEventListener("click", function (event) {
    var item = event.target.closest && event.target.closest("#queue-items .queue-item");
    if (item && queue()) {
      items().forEach(function (other) { other.classList.remove("current"); });
      item.classList.add("current");
    }
  });

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function submit(action) {
    var form = document.querySelector("#review-panel form[data-action='" + action + "']");
    if (!form) return false;
    if (action === "request_changes") {
      var note = form.querySelector("textarea[name=note]");
      if (note) { note.focus(); return true; }
    }
    form.requestSubmit();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (!queue() || event.metaKey || event.ctrlKey || event.altKey) {
      // Ctrl/Cmd+Enter in the "what should change" box sends the request.
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.name === "note") {
        event.preventDefault();
        event.target.form.requestSubmit();
      }
      return;
    }
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (typing(event.target)) return;
    var handled = true;
    switch (event.key) {
      case "ArrowDown": case "j": move(1); break;
      case "ArrowUp": case "k": move(-1); break;
      case "a": handled = submit("approve"); break;
      case "c": handled = submit("request_changes"); break;
      case "r": handled = submit("reject"); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (!queue()) return;
    var first = items()[0];
    if (first && first.getAttribute("data-output") === panelOutput()) first.classList.add("current");
  });
})();

// Forms marked data-reset-on-success (the comment box) empty themselves once posted.
(function () {
  "use strict";
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (event.detail.successful && form && form.matches && form.matches("form[data-reset-on-success]")) {
      form.reset();
    }
  });
})();

// Gallery bulk selection: a live count, "select all shown", and selections that survive a
// card being re-rendered by a live update.
(function () {
  "use strict";
  var selected = new Set();

  function boxes() { return document.querySelectorAll("input.select[form=bulk]"); }
  function refresh() {
    var count = document.querySelector("[data-bulk-count]");
    if (count) count.textContent = selected.size + " selected";
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("input.select[form=bulk]")) return;
    if (box.checked) selected.add(box.value); else selected.delete(box.value);
    refresh();
  });

  document.addEventListener("click", function (event) {
    if (!event.target.matches || !event.target.matches("[data-bulk-all]")) return;
    var all = Array.prototype.every.call(boxes(), function (box) { return box.checked; });
    boxes().forEach(function (box) {
      box.checked = !all;
      if (box.checked) selected.add(box.value); else selected.delete(box.value);
    });
    refresh();
  });

  document.addEventListener("htmx:load", function (event) {
    var root = event.detail.elt;
    if (!root.querySelectorAll) return;
    root.querySelectorAll("input.select[form=bulk]").forEach(function (box) {
      if (selected.has(box.value)) box.checked = true;
    });
  });
})();

// Compare: a slider reveals the left image over the right one. Without JavaScript the two
// images are simply shown side by side.
(function () {
  "use strict";
  function setup(figure) {
    var over = figure.querySelector(".compare-over");
    var range = figure.querySelector("input[type=range]");
    function apply() { over.style.clipPath = "inset(0 " + (100 - range.value) + "% 0 0)"; }
    range.addEventListener("input", apply);
    figure.hidden = false;
    apply();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-compare-slider]").forEach(setup);
  });
})();
