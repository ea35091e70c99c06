/* Dark mode that follows the system: Bootstrap's data-bs-theme from prefers-color-scheme.
 * Loaded in <head>, before the styles, so a dark page never flashes white. */
"use strict";

(() => {
  const query = window.matchMedia("(prefers-color-scheme: dark)");
  const apply = () => document.documentElement.setAttribute("data-bs-theme", query.matches ? "dark" : "light");
  apply();
  query.addEventListener("change", apply);
})();
