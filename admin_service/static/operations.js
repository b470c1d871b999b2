// The operations view refreshes its figures in place: every N seconds it fetches the page's JSON
// (same origin, the admin pages' own checks) and sets the text of each element marked data-live="key".
// Text only (textContent), never HTML. No build step, no library.
(function () {
  "use strict";
  var root = document.getElementById("operations");
  if (!root) { return; }
  var url = root.getAttribute("data-refresh-url");
  var seconds = parseInt(root.getAttribute("data-refresh-seconds"), 10) || 30;
  var lang = root.getAttribute("data-lang");
  var failed = document.getElementById("refresh-error");

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function showRefusals(refusals) {
    var table = document.getElementById("refusals");
    var empty = document.getElementById("refusals-empty");
    if (!table) { return; }
    var body = table.tBodies[0];
    while (body.firstChild) { body.removeChild(body.firstChild); }
    refusals.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.appendChild(cell(r.when));
      tr.appendChild(cell(r.person));
      tr.appendChild(cell(r.facility));
      tr.appendChild(cell(r.address));
      var reasons = document.createElement("td");
      var list = document.createElement("ul");
      list.className = "reasons";
      r.reasons.forEach(function (text) {
        var li = document.createElement("li");
        li.textContent = text;
        list.appendChild(li);
      });
      reasons.appendChild(list);
      tr.appendChild(reasons);
      body.appendChild(tr);
    });
    table.hidden = refusals.length === 0;
    if (empty) { empty.hidden = refusals.length !== 0; }
  }

  function show(data) {
    var figures = data.figures;
    Object.keys(figures).forEach(function (key) {
      document.querySelectorAll('[data-live="' + key + '"]').forEach(function (el) {
        el.textContent = figures[key];
      });
    });
    document.querySelectorAll('[data-live="updated"]').forEach(function (el) { el.textContent = data.updated; });
    document.querySelectorAll("tr[id^='facility-']").forEach(function (tr) {
      var id = parseInt(tr.id.slice("facility-".length), 10);
      var closed = data.closed.indexOf(id) !== -1;
      tr.classList.toggle("is-closed", closed);
      tr.classList.toggle("is-open", !closed);
    });
    showRefusals(data.refusals);
  }

  function refresh() {
    var sep = url.indexOf("?") === -1 ? "?" : "&";
    fetch(url + sep + "lang=" + encodeURIComponent(lang), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (data) { show(data); if (failed) { failed.hidden = true; } })
      .catch(function () { if (failed) { failed.hidden = false; } })
      .then(function () { window.setTimeout(refresh, seconds * 1000); });
  }

  window.setTimeout(refresh, seconds * 1000);
}());
