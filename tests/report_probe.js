// Injected into a report by tests/test_report.py: measures the page, clicks every header, filters, and reports as JSON.
var out = {width: document.documentElement.scrollWidth, unsorted: [], figures: 0, blank: 0, cut: []};
document.querySelectorAll("div.scroll").forEach(function (d) { if (d.scrollWidth > d.clientWidth + 1) out.cut.push(d.parentNode.id); });
function lead(t) { var m = /^\s*([+-]?[\d,]*\.?\d+)\s*([KM]?)/.exec(t); return m ? parseFloat(m[1].replace(/,/g, "")) * ({K: 1e3, M: 1e6}[m[2]] || 1) : null; }
document.querySelectorAll("table.report").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.click();
    var seen = Array.prototype.map.call(table.tBodies, function (b) { return lead(b.rows[0].cells[col].textContent); }).filter(function (v) { return v !== null; });
    for (var i = 1; i < seen.length; i++) if (seen[i] < seen[i - 1]) { out.unsorted.push(table.parentNode.parentNode.id + ":" + th.textContent); break; }
  });
});
document.querySelectorAll("figure").forEach(function (f) { out.figures += 1; if (!f.querySelector("svg text")) out.blank += 1; });
var model = document.getElementById("filter-model"); model.value = "roberta-base"; model.dispatchEvent(new Event("change"));
function visible(sel) { return Array.prototype.filter.call(document.querySelectorAll(sel), function (e) { return !e.hidden; }).length; }
out.other_rows = visible('tr[data-model="tiny-roberta"], tr[data-model="roberta-large"]');
out.other_figures = visible('figure[data-model="tiny-roberta"], figure[data-model="roberta-large"]');
out.rows = visible('tr[data-model="roberta-base"]'); out.shown_figures = visible('figure[data-model="roberta-base"]');
document.body.insertAdjacentHTML("beforeend", "<pre id=probe>" + JSON.stringify(out) + "</pre>");
