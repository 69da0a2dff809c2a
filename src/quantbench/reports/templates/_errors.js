window.__qbErrors = [];
window.addEventListener("error", function (e) { window.__qbErrors.push(String(e.message || e)); });
(function () { var orig = console.error; console.error = function () {
  window.__qbErrors.push(Array.prototype.join.call(arguments, " ")); return orig.apply(console, arguments); }; })();
