// Live updates by polling /api/status and /api/runs/ID/log: no library, nothing from a network.
(function () {
  "use strict";
  var FINAL = ["Completed", "Failed", "Canceled", "Succeeded", "Healthy", "Deleted", "Unknown", "Unhealthy"];
  function ids(attr) {
    var out = [];
    document.querySelectorAll("[" + attr + "]").forEach(function (el) {
      if (FINAL.indexOf(el.textContent.trim()) < 0) { out.push(el.getAttribute(attr)); }
    });
    return out;
  }
  function poll() {
    var q = { runs: ids("data-live-run"), services: ids("data-live-service"), builds: ids("data-live-build") };
    if (!q.runs.length && !q.services.length && !q.builds.length) { return; }
    var url = "/api/status?runs=" + encodeURIComponent(q.runs.join(",")) + "&services=" +
      encodeURIComponent(q.services.join(",")) + "&builds=" + encodeURIComponent(q.builds.join(","));
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (env) {
      [["runs", "data-live-run"], ["services", "data-live-service"], ["builds", "data-live-build"]].forEach(function (p) {
        var states = env.data[p[0]];
        document.querySelectorAll("[" + p[1] + "]").forEach(function (el) {
          var s = states[el.getAttribute(p[1])];
          if (s && s !== el.textContent) {
            el.textContent = s;
            if (el.hasAttribute("data-reload") && FINAL.indexOf(s) >= 0) { window.location.reload(); }
          }
        });
      });
    }).catch(function () {});
  }
  function logs() {
    document.querySelectorAll("[data-live-log]").forEach(function (el) {
      var id = el.getAttribute("data-live-log");
      var status = document.querySelector("[data-live-run]");
      if (status && FINAL.indexOf(status.textContent.trim()) >= 0 && el.dataset.done) { return; }
      fetch("/api/runs/" + encodeURIComponent(id) + "/log?offset=" + el.getAttribute("data-offset"),
            { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (env) {
        if (env.data.text) { el.appendChild(document.createTextNode(env.data.text)); }
        el.setAttribute("data-offset", String(env.data.offset));
        if (FINAL.indexOf(env.data.status) >= 0) { el.dataset.done = "1"; }
      }).catch(function () {});
    });
  }
  function buildLogs() {
    document.querySelectorAll("[data-live-build-log]").forEach(function (el) {
      if (el.dataset.done) { return; }
      fetch("/api/builds/" + encodeURIComponent(el.getAttribute("data-live-build-log")),
            { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (env) {
        if (env.data.log !== el.textContent) { el.textContent = env.data.log; }
        if (env.data.status !== "Running") { el.dataset.done = "1"; }
      }).catch(function () {});
    });
  }
  function serviceLogs() {
    document.querySelectorAll("[data-live-service-log]").forEach(function (el) {
      fetch("/api/services/" + encodeURIComponent(el.getAttribute("data-live-service-log")) + "/logs",
            { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (env) {
        if (env.data && env.data.text !== undefined && env.data.text !== el.textContent) {
          el.textContent = env.data.text;
        }
      }).catch(function () {});
    });
  }
  window.setInterval(function () { poll(); logs(); buildLogs(); serviceLogs(); }, 2000);
}());
