// The report's own script: sort and filter the summary table, draw each chart when it scrolls into view.
// Inlined as it is into the page; no library but the plotly.js before it (inlined, or from its CDN with --plotly cdn,
// where an offline reader gets a note instead of charts).
(function () {
  "use strict";

  function sortKey(row, index) {
    var cell = row.cells[index];
    var raw = cell ? cell.getAttribute("data-sort") : null;
    if (raw === null || raw === "") return null;
    var number = Number(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }

  function compare(a, b) {
    if (typeof a !== typeof b) return typeof a === "number" ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function sortTable(table, header) {
    var index = header.cellIndex;
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(header.parentNode.cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (x, y) {
      var a = sortKey(x, index), b = sortKey(y, index);
      if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;  // missing values last, either way
      return ascending ? compare(a, b) : compare(b, a);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function filterTable(table, text, counter) {
    var query = text.trim().toLowerCase();
    var shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var match = query === "" || row.textContent.toLowerCase().indexOf(query) !== -1;
      row.hidden = !match;
      if (match) shown += 1;
    });
    if (counter) counter.textContent = query === "" ? "" : shown + " of " + table.tBodies[0].rows.length + " shown";
  }

  function draw(element) {
    if (element.getAttribute("data-drawn")) return;
    if (!window.Plotly) {  // plotly.js from the CDN did not load: say so once, instead of an error per chart
      var missing = document.getElementById("plotly-missing");
      if (missing) missing.hidden = false;
      return;
    }
    element.setAttribute("data-drawn", "1");
    var figure = JSON.parse(document.getElementById(element.getAttribute("data-figure")).textContent);
    window.Plotly.newPlot(element, figure.data, figure.layout, { responsive: true, displaylogo: false });
  }

  function drawAll() {
    Array.prototype.forEach.call(document.querySelectorAll(".chart[data-figure]"), draw);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("summary-table");
    if (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header) {
        header.addEventListener("click", function () { sortTable(table, header); });
        header.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortTable(table, header); }
        });
      });
      var input = document.getElementById("filter");
      var counter = document.getElementById("shown-count");
      if (input) input.addEventListener("input", function () { filterTable(table, input.value, counter); });
    }
    var charts = document.querySelectorAll(".chart[data-figure]");
    if ("IntersectionObserver" in window) {
      var observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (entry.isIntersecting) { observer.unobserve(entry.target); draw(entry.target); }
        });
      }, { rootMargin: "300px 0px" });
      Array.prototype.forEach.call(charts, function (chart) { observer.observe(chart); });
    } else {
      drawAll();
    }
    window.addEventListener("beforeprint", drawAll);
  });

  window.forecastReport = { draw: draw, drawAll: drawAll };
})();
