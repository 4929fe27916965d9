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
    var compare = document.querySelector("[data-bulk-compare]");
    if (compare) compare.disabled = selected.size !== 2;
  }
  document.addEventListener("DOMContentLoaded", refresh);

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

// Pictures true to the pixel: a viewer shows an image fitted (its own aspect ratio, never
// stretched) or at 100 % (one image pixel per CSS pixel), dragged to pan. Viewers sharing a
// data-sync group zoom and pan together (compare). The lightbox is the same viewer, full screen.
(function () {
  "use strict";
  var syncing = false;

  function group(viewer) {
    var name = viewer.getAttribute("data-sync");
    if (!name) return [viewer];
    return Array.prototype.slice.call(document.querySelectorAll("[data-viewer][data-sync='" + name + "']"));
  }
  function toolsOf(viewer) {
    var next = viewer.nextElementSibling;
    return next && next.classList.contains("viewer-tools") ? next : null;
  }
  function setZoom(viewer, on, fx, fy) {
    var img = viewer.querySelector("img");
    if (!img) return;
    viewer.classList.toggle("zoomed", on);
    if (on) {
      img.style.width = img.naturalWidth + "px";
      img.style.height = img.naturalHeight + "px";
      viewer.scrollLeft = Math.max(0, fx * img.naturalWidth - viewer.clientWidth / 2);
      viewer.scrollTop = Math.max(0, fy * img.naturalHeight - viewer.clientHeight / 2);
    } else {
      img.style.width = "";
      img.style.height = "";
    }
    var tools = toolsOf(viewer);
    var button = tools && tools.querySelector("[data-zoom]");
    if (button) {
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = on ? "Fit" : "100 %";
    }
  }
  function toggle(viewer, fx, fy) {
    var on = !viewer.classList.contains("zoomed");
    group(viewer).forEach(function (each) {
      setZoom(each, on, fx === undefined ? 0.5 : fx, fy === undefined ? 0.5 : fy);
    });
  }
  window.studioToggleZoom = toggle;

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-zoom]");
    if (!button) return;
    var tools = button.closest(".viewer-tools");
    var viewer = tools ? tools.previousElementSibling : button.closest("[data-viewer]");
    if (viewer && viewer.hasAttribute("data-viewer")) toggle(viewer);
  });
  document.addEventListener("dblclick", function (event) {
    var viewer = event.target.closest && event.target.closest("[data-viewer]");
    if (!viewer) return;
    var img = viewer.querySelector("img");
    var rect = img.getBoundingClientRect();
    var fx = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    var fy = Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height));
    if (viewer.classList.contains("zoomed")) toggle(viewer); else toggle(viewer, fx, fy);
  });

  // Panning: drag with a mouse, pen or finger.
  var drag = null;
  document.addEventListener("pointerdown", function (event) {
    var viewer = event.target.closest && event.target.closest("[data-viewer].zoomed");
    if (!viewer || event.button !== 0) return;
    drag = { viewer: viewer, x: event.clientX, y: event.clientY, left: viewer.scrollLeft, top: viewer.scrollTop };
    viewer.classList.add("panning");
    viewer.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  document.addEventListener("pointermove", function (event) {
    if (!drag) return;
    drag.viewer.scrollLeft = drag.left - (event.clientX - drag.x);
    drag.viewer.scrollTop = drag.top - (event.clientY - drag.y);
  });
  function endDrag() {
    if (drag) drag.viewer.classList.remove("panning");
    drag = null;
  }
  document.addEventListener("pointerup", endDrag);
  document.addEventListener("pointercancel", endDrag);

  // Synced pan: the same position, as a fraction of each picture, in every viewer of a group.
  document.addEventListener("scroll", function (event) {
    var viewer = event.target;
    if (syncing || !viewer.hasAttribute || !viewer.hasAttribute("data-sync") || !viewer.classList.contains("zoomed")) return;
    var fx = viewer.scrollLeft / Math.max(1, viewer.scrollWidth - viewer.clientWidth);
    var fy = viewer.scrollTop / Math.max(1, viewer.scrollHeight - viewer.clientHeight);
    syncing = true;
    group(viewer).forEach(function (other) {
      if (other === viewer || !other.classList.contains("zoomed")) return;
      other.scrollLeft = fx * (other.scrollWidth - other.clientWidth);
      other.scrollTop = fy * (other.scrollHeight - other.clientHeight);
    });
    syncing = false;
  }, true);

  // "z" toggles 100 % on the picture being reviewed (or the first one on the page).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "z" || event.metaKey || event.ctrlKey || event.altKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    var open = document.querySelector("dialog.lightbox[open] [data-viewer]");
    var viewer = open || document.querySelector("#review-panel [data-viewer]") || document.querySelector("[data-viewer]:not([hidden])");
    if (viewer) { event.preventDefault(); toggle(viewer); }
  });

  // Lightbox: links marked data-lightbox open their image full screen in a <dialog> (fit, or
  // 100 % and pan). Without JavaScript they simply open the file.
  var dialog;
  function ensureDialog() {
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.className = "lightbox";
    dialog.setAttribute("aria-label", "Picture");
    dialog.innerHTML = '<div class="viewer" data-viewer><img alt="" draggable="false"></div>' +
      '<div class="viewer-tools lightbox-bar"><span><button type="button" data-zoom aria-pressed="false">100 %</button> ' +
      '<a class="lightbox-detail" href="#">Open job</a></span><button type="button" class="lightbox-close">Close ✕</button></div>';
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog || event.target.classList.contains("lightbox-close")) dialog.close();
    });
    dialog.addEventListener("close", function () { setZoom(dialog.querySelector("[data-viewer]"), false); });
    document.body.appendChild(dialog);
    return dialog;
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-lightbox]");
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    var box = ensureDialog();
    var inner = link.querySelector("img");
    var img = box.querySelector("img");
    img.src = link.href;
    img.alt = inner ? inner.alt : "";
    var detail = box.querySelector(".lightbox-detail");
    detail.hidden = !link.dataset.detail;
    if (link.dataset.detail) detail.href = link.dataset.detail;
    box.showModal();
  });
})();

// Compare: a slider reveals the left picture over the right one (drag on the picture or use
// the range), or both side by side; videos and audio play together; 3D models turn together.
// Without JavaScript the two outputs are simply shown side by side.
(function () {
  "use strict";
  function setup(figure) {
    var stage = figure.querySelector(".compare-stage");
    var over = figure.querySelector(".compare-over");
    var handle = figure.querySelector(".compare-handle");
    var range = figure.querySelector("input[type=range]");
    function apply() {
      over.style.clipPath = "inset(0 " + (100 - range.value) + "% 0 0)";
      if (handle) handle.style.left = range.value + "%";
    }
    range.addEventListener("input", apply);
    var dragging = false;
    function follow(event) {
      var rect = stage.getBoundingClientRect();
      range.value = Math.round(Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width)) * 100);
      apply();
    }
    stage.addEventListener("pointerdown", function (event) {
      dragging = true;
      stage.setPointerCapture(event.pointerId);
      follow(event);
    });
    stage.addEventListener("pointermove", function (event) { if (dragging) follow(event); });
    stage.addEventListener("pointerup", function () { dragging = false; });
    figure.hidden = false;
    apply();
  }
  function mode(name) {
    var slider = document.querySelector("[data-compare-slider]");
    var sides = document.querySelector("[data-compare-sides]");
    if (!slider || !sides) return;
    slider.hidden = name !== "slider";
    sides.classList.toggle("details-only", name === "slider");
    document.querySelectorAll("[data-compare-mode]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.getAttribute("data-compare-mode") === name ? "true" : "false");
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-compare-mode]");
    if (button) mode(button.getAttribute("data-compare-mode"));
    var play = event.target.closest && event.target.closest("[data-play-both]");
    if (play) {
      var players = document.querySelectorAll("[data-sync-play='" + play.getAttribute("data-play-both") + "']");
      var paused = Array.prototype.some.call(players, function (p) { return p.paused; });
      players.forEach(function (p) {
        if (paused) { p.currentTime = 0; p.play(); } else { p.pause(); }
      });
    }
  });
  // Models in one group follow each other's camera.
  var turning = false;
  document.addEventListener("camera-change", function (event) {
    var viewer = event.target;
    if (turning || !event.detail || event.detail.source !== "user-interaction") return;
    var others = document.querySelectorAll("model-viewer");
    if (others.length < 2 || !document.querySelector("[data-compare-sides]")) return;
    turning = true;
    var orbit = viewer.getCameraOrbit();
    others.forEach(function (other) {
      if (other !== viewer) {
        other.cameraOrbit = orbit.theta + "rad " + orbit.phi + "rad " + orbit.radius + "m";
        other.jumpCameraToGoal();
      }
    });
    turning = false;
  }, true);
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-compare-slider]").forEach(setup);
    var tabs = document.querySelector("[data-compare-tabs]");
    if (tabs) { tabs.hidden = false; mode("slider"); }
  });
})();
