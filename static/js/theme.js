// Runs before the first paint (loaded without defer): applies the person's chosen theme, if
// any, so a dark page never flashes light. Without a choice the system's preference applies.
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");
  try {
    var chosen = window.localStorage.getItem("studio-theme");
    if (chosen === "light" || chosen === "dark") root.setAttribute("data-theme", chosen);
  } catch (error) { /* storage refused (private mode): follow the system */ }
})();
