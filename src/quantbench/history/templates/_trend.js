(function () {
  "use strict";
  var filter = document.getElementById("cell-filter"), metric = document.getElementById("metric-filter");
  var only = document.getElementById("only-changes"), count = document.getElementById("shown-count");
  var sections = Array.prototype.slice.call(document.querySelectorAll("details.cell"));

  // Show the cells whose name holds the text, the chosen metric's charts, and (ticked) only cells with a change point.
  function apply() {
    var text = filter.value.trim().toLowerCase(), chosen = metric.value, shown = 0;
    sections.forEach(function (section) {
      var visible = 0;
      section.querySelectorAll("figure[data-metric]").forEach(function (figure) {
        var on = !chosen || figure.getAttribute("data-metric") === chosen;
        figure.hidden = !on;
        if (on) { visible += 1; }
      });
      var ok = visible > 0 && section.getAttribute("data-cell").toLowerCase().indexOf(text) >= 0 &&
        (!only.checked || section.getAttribute("data-changes") !== "0");
      section.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = String(shown);
    return shown;
  }
  [filter, metric, only].forEach(function (el) {
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  apply();

  // Self-check, read by the browser test (html[data-trendcheck]): every chart's lines, points and change-point
  // markers with where they were laid out, and what the filter shows. #selfcheck opens every section first.
  function centre(el) {
    var box = el.getBoundingClientRect();
    return box.left + box.width / 2;
  }
  function trendCheck() {
    var selfcheck = location.hash === "#selfcheck", filterCheck = null;
    if (selfcheck) {
      sections.forEach(function (section) { section.open = true; });
      if (sections.length) {
        filter.value = sections[0].getAttribute("data-cell");
        var one = apply();
        only.checked = true;
        filter.value = "";
        var withChanges = apply();
        only.checked = false;
        var all = apply();
        filterCheck = {byName: one, withChanges: withChanges, all: all};
      }
    }
    var charts = Array.prototype.map.call(document.querySelectorAll("svg.chart.trend"), function (svg) {
      var box = svg.getBoundingClientRect();
      return {
        id: svg.getAttribute("data-chart"), cell: svg.getAttribute("data-cell"), metric: svg.getAttribute("data-metric"),
        width: box.width, height: box.height,
        lines: Array.prototype.map.call(svg.querySelectorAll("polyline.line"), function (line) {
          var b = line.getBoundingClientRect();
          return {machine: line.getAttribute("data-machine"), width: b.width, points: line.points.numberOfItems};
        }),
        points: Array.prototype.map.call(svg.querySelectorAll("circle.point"), function (c) {
          return {machine: c.getAttribute("data-machine"), commit: c.getAttribute("data-commit"), x: centre(c) - box.left};
        }),
        changepoints: Array.prototype.map.call(svg.querySelectorAll("line.changepoint"), function (c) {
          return {machine: c.getAttribute("data-machine"), commit: c.getAttribute("data-commit"),
                  x: centre(c) - box.left, height: c.getBoundingClientRect().height};
        }),
        legend: Array.prototype.map.call(svg.querySelectorAll("g.legend-entry"), function (g) {
          return g.getAttribute("data-machine");
        })
      };
    });
    var table = document.getElementById("steps-table");
    var rows = table ? Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      return {commit: r.getAttribute("data-commit"), machine: r.getAttribute("data-machine"),
              cells: Array.prototype.map.call(r.cells, function (c) { return c.textContent.trim(); })};
    }) : [];
    document.documentElement.setAttribute("data-trendcheck", JSON.stringify(
      {charts: charts, steps: rows, filter: filterCheck}));
  }
  try { trendCheck(); } catch (e) { (window.__qbErrors = window.__qbErrors || []).push(String(e)); }
})();
