// ferry's web UI script. Pages work without it; with it, actions are sent to the JSON API
// without leaving the page, and Application changes arrive over server-sent events (/events)
// and update the badges in place.
(function () {
  "use strict";

  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  var SYNC = { Synced: "ok", OutOfSync: "warn" };
  var HEALTH = { Healthy: "ok", Progressing: "info", Suspended: "info", Degraded: "bad", Missing: "bad" };
  var PHASE = { Succeeded: "ok", Running: "info", Terminating: "info", Pending: "info", Failed: "bad", Error: "bad" };

  function setBadge(el, text, classes) {
    if (!el) return;
    el.textContent = text;
    el.classList.remove("ok", "warn", "bad", "info", "unknown");
    el.classList.add(classes[text] || "unknown");
  }

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function say(el, text, isError) {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  // --- Actions: post to the JSON API with the CSRF header. ---
  function actionBody(form) {
    var kind = form.getAttribute("data-action");
    var checked = function (name) {
      var box = form.querySelector('input[name="' + name + '"]');
      return !!(box && box.checked);
    };
    if (kind === "sync") return { url: form.getAttribute("data-api"), body: { prune: checked("prune"), dryRun: checked("dryRun") } };
    if (kind === "refresh") return { url: form.getAttribute("data-api") + (checked("hard") ? "?hard=true" : ""), body: null };
    if (kind === "rollback") {
      var id = parseInt(form.querySelector('select[name="id"]').value, 10);
      return { url: form.getAttribute("data-api"), body: { id: id, prune: checked("prune") } };
    }
    return null;
  }

  function wireActions() {
    var status = document.getElementById("action-status");
    var forms = document.querySelectorAll("form[data-api]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        var req = actionBody(form);
        if (!req || !window.fetch) return; // let the browser post the form
        event.preventDefault();
        var button = form.querySelector('button[type="submit"]');
        if (button) button.disabled = true;
        say(status, "Sending…", false);
        var headers = { "X-CSRF-Token": csrf, "Accept": "application/json" };
        if (req.body) headers["Content-Type"] = "application/json";
        fetch(req.url, {
          method: "POST",
          credentials: "same-origin",
          headers: headers,
          body: req.body ? JSON.stringify(req.body) : null
        }).then(function (res) {
          return res.json().catch(function () { return {}; }).then(function (data) {
            if (res.ok) {
              var what = form.getAttribute("data-action");
              say(status, what.charAt(0).toUpperCase() + what.slice(1) + " requested; waiting for the controller…", false);
              if (what === "refresh" && button) button.disabled = false;
            } else {
              say(status, (data && data.message) || ("The server answered " + res.status), true);
              if (button) button.disabled = false;
            }
          });
        }).catch(function (err) {
          say(status, "Could not reach the server: " + err, true);
          if (button) button.disabled = false;
        });
      });
    });
  }

  // --- Live updates. ---
  function updateRow(row, ev) {
    setBadge(row.querySelector('[data-field="sync"]'), ev.sync, SYNC);
    setBadge(row.querySelector('[data-field="health"]'), ev.health, HEALTH);
    setText(row.querySelector('[data-field="operation"]'), ev.operation);
    setText(row.querySelector('[data-field="revision"]'), ev.revision);
    setText(row.querySelector('[data-field="last-sync"]'), ev.lastSync);
    row.classList.toggle("deleted", !!ev.deleted);
  }

  var refreshTimer = null;
  // Fetches the page again and swaps the sections that change with the app's state.
  function refreshSections() {
    if (refreshTimer) clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      fetch(window.location.pathname, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (res) { return res.ok ? res.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          ["operation", "conditions", "tree", "history"].forEach(function (id) {
            var fresh = doc.getElementById(id);
            var current = document.getElementById(id);
            if (fresh && current && !current.contains(document.activeElement)) current.replaceWith(fresh);
          });
          var freshRollback = doc.getElementById("rollback-id");
          var rollback = document.getElementById("rollback-id");
          if (freshRollback && rollback && document.activeElement !== rollback) rollback.innerHTML = freshRollback.innerHTML;
        })
        .catch(function () {});
    }, 300);
  }

  function updateApp(root, ev) {
    var before = root.getAttribute("data-state");
    setBadge(document.getElementById("sync-status"), ev.sync, SYNC);
    setBadge(document.getElementById("health-status"), ev.health, HEALTH);
    if (ev.revision) setText(root.querySelector('[data-field="revision"]'), ev.revision);
    if (ev.operation) {
      setBadge(document.getElementById("operation-phase"), ev.operation, PHASE);
      setText(document.getElementById("operation-message"), ev.operationMessage);
    }
    var pending = ev.operation === "Pending" || ev.operation === "Running";
    ["sync-button", "rollback-button"].forEach(function (id) {
      var b = document.getElementById(id);
      if (b) b.disabled = pending;
    });
    var state = [ev.sync, ev.health, ev.operation, ev.revision, ev.lastSync].join("|");
    root.setAttribute("data-state", state);
    if (before !== state) {
      var status = document.getElementById("action-status");
      if (status && !pending && ev.operation) say(status, "Last operation: " + ev.operation + (ev.operationMessage ? " — " + ev.operationMessage : ""), ev.operation === "Failed" || ev.operation === "Error");
      refreshSections();
    }
    if (ev.deleted) say(document.getElementById("live-status"), "This application was deleted.", true);
  }

  function listen() {
    var list = document.getElementById("apps");
    var app = document.getElementById("app");
    if ((!list && !app) || !window.EventSource) return;
    var live = document.getElementById("live-status");
    var source = new EventSource("/events");
    source.addEventListener("ready", function () {
      document.documentElement.setAttribute("data-live", "on");
      say(live, "", false);
    });
    source.addEventListener("lagged", function () {
      say(live, "Some updates were missed; reload the page to see the latest state.", false);
    });
    source.addEventListener("app", function (msg) {
      var ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (list) {
        var rows = list.querySelectorAll("tr[data-app]");
        Array.prototype.forEach.call(rows, function (row) {
          if (row.getAttribute("data-app") === ev.name) updateRow(row, ev);
        });
      }
      if (app && app.getAttribute("data-app") === ev.name) updateApp(app, ev);
    });
    source.onerror = function () {
      document.documentElement.setAttribute("data-live", "off");
      say(live, "Live updates are interrupted; retrying…", false);
    };
  }

  function start() {
    wireActions();
    listen();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
