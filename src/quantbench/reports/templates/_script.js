(function () {
  "use strict";
  function cellValue(row, idx) {
    var cell = row.cells[idx];
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  }
  // Missing values ("" sort key) always go last, whichever the direction.
  function sortTable(th) {
    var table = th.closest("table"), idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var numeric = th.classList.contains("num"), body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, idx), y = cellValue(b, idx);
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, undefined, {numeric: true});
      return dir === "ascending" ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable thead th").forEach(function (th) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortTable(th); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(th); } });
  });

  // Self-check, read by tests/browser: did every chart lay out with marks, did sorting work,
  // did any script error occur. Kept in the page so a user can see it too (html[data-selfcheck]).
  function selfCheck() {
    var charts = Array.prototype.map.call(document.querySelectorAll("svg.chart"), function (svg) {
      var box = svg.getBoundingClientRect();
      return {id: svg.getAttribute("data-chart"), width: box.width, height: box.height,
              marks: svg.querySelectorAll(".mark").length};
    });
    var sort = null;
    if (location.hash === "#selfcheck") {
      var table = document.querySelector("table.sortable"), th = table && table.querySelector("thead th[data-key=\"latency_p50_ms\"]");
      if (th) {
        sortTable(th);
        var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
        var vals = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return cellValue(r, idx); })
          .filter(function (v) { return v !== ""; }).map(parseFloat);
        sort = {key: th.getAttribute("data-key"), ascending: vals.every(function (v, i) { return i === 0 || vals[i - 1] <= v; }),
                n: vals.length};
      }
    }
    document.documentElement.setAttribute("data-selfcheck", JSON.stringify(
      {errors: window.__qbErrors || [], charts: charts, sort: sort}));
  }
  try { selfCheck(); } catch (e) { (window.__qbErrors = window.__qbErrors || []).push(String(e)); }
})();
