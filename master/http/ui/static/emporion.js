// Emporion web UI: the live stream and small behaviours. No framework, no build step.
//
// The page opens one Server-Sent Events stream (/ui/events). The master answers with "hello"
// (this viewer's id), then "batch" messages about once a second: the overview's gauges, new
// utilisation samples, and the new states of the tasks this page shows, which it posts to
// /ui/watch/<viewer> after every load and every htmx swap. Tables whose rows came or went are
// refreshed through htmx (one page of rows), never the whole state.
(function () {
  "use strict";
  var body = document.body;
  var live = document.getElementById("live");
  var viewer = null;
  var source = null;
  var failures = 0;
  var refreshTimers = {};

  // Fragments answered with 4xx/5xx (a refused action, a bad filter) are shown, not dropped.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status >= 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSettle", function () { postWatch(); });

  function setLive(state, title) {
    if (!live) { return; }
    live.className = "live " + state;
    live.title = "live updates: " + title;
  }

  function shownTasks() {
    var out = [];
    document.querySelectorAll("[data-task-id]").forEach(function (el) {
      var state = el.querySelector("[data-state]");
      out.push([el.dataset.task, el.dataset.taskId, state ? state.dataset.state : ""]);
    });
    return out;
  }

  function shownIds(attribute) {
    var out = [];
    document.querySelectorAll("[" + attribute + "]").forEach(function (el) {
      out.push(el.getAttribute(attribute));
    });
    return out;
  }

  function postWatch() {
    if (viewer === null) { return; }
    var body_ = JSON.stringify({
      tasks: shownTasks(),
      agents: shownIds("data-agent-id"),
      frameworks: shownIds("data-framework-id"),
    });
    fetch(body.dataset.watchUrl + "/" + encodeURIComponent(viewer), {
      method: "POST", headers: {"Content-Type": "application/json"}, body: body_,
    }).catch(function () { /* the stream's own error handling reconnects */ });
  }

  function stateClass(state) {
    if (state === "TASK_RUNNING" || state === "TASK_FINISHED") { return "good"; }
    if (["TASK_FAILED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE",
         "TASK_GONE_BY_OPERATOR"].indexOf(state) >= 0) { return "bad"; }
    if (["TASK_STAGING", "TASK_STARTING", "TASK_KILLING"].indexOf(state) >= 0) { return "wait"; }
    return "other";
  }

  function updateTask(frameworkId, taskId, state) {
    var changed = false;
    document.querySelectorAll("[data-task-id]").forEach(function (el) {
      if (el.dataset.task !== frameworkId || el.dataset.taskId !== taskId) { return; }
      var badge = el.querySelector("[data-state]");
      if (badge) {
        badge.dataset.state = state;
        badge.textContent = state.replace("TASK_", "");
        badge.className = "state " + stateClass(state);
      }
      el.classList.remove("flash");
      void el.offsetWidth;  // restart the highlight
      el.classList.add("flash");
      changed = true;
    });
    if (changed) {
      body.dispatchEvent(new CustomEvent("task-changed", {detail: {frameworkId: frameworkId, taskId: taskId, state: state}}));
    }
  }

  // A region is refreshed at most every 2 s, with the page's own URL (the server answers an
  // htmx request with the region's fragment) or, on the overview, by selecting it from "/".
  function refresh(selector) {
    var region = document.querySelector(selector);
    if (!region || refreshTimers[selector]) { return; }
    refreshTimers[selector] = setTimeout(function () {
      delete refreshTimers[selector];
      if (body.dataset.page === "overview") {
        htmx.ajax("GET", "/", {target: selector, select: selector, swap: "outerHTML"});
      } else {
        htmx.ajax("GET", location.pathname + location.search, {target: selector, swap: "innerHTML"});
      }
    }, 2000);
  }

  function refreshAll() {
    ["#tasks-table", "#agents-table", "#frameworks-table", "#overview-agents",
     "#overview-frameworks"].forEach(refresh);
    body.dispatchEvent(new CustomEvent("task-changed"));
  }

  function applyBatch(batch) {
    if (batch.metrics) {
      document.querySelectorAll("[data-metric]").forEach(function (el) {
        var value = batch.metrics[el.dataset.metric];
        if (value !== undefined) { el.textContent = Math.round(value); }
      });
    }
    if (batch.samples) {
      document.dispatchEvent(new CustomEvent("emporion:samples", {detail: batch.samples}));
    }
    (batch.tasks || []).forEach(function (t) { updateTask(t[0], t[1], t[2]); });
    if (batch.new_tasks) {
      var notice = document.getElementById("new-tasks");
      if (notice) {
        var count = notice.querySelector("span");
        count.textContent = String((parseInt(count.textContent, 10) || 0) + batch.new_tasks);
        notice.hidden = false;
      }
    }
    var shownAgents = shownIds("data-agent-id");
    if ((batch.agents || []).some(function (id) { return shownAgents.indexOf(id) >= 0; }) ||
        (batch.agents && shownAgents.length < 10)) {
      refresh("#agents-table");
      refresh("#overview-agents");
    }
    var shownFrameworks = shownIds("data-framework-id");
    if ((batch.frameworks || []).some(function (id) { return shownFrameworks.indexOf(id) >= 0; }) ||
        (batch.frameworks && shownFrameworks.length < 20)) {
      refresh("#frameworks-table");
      refresh("#overview-frameworks");
    }
    if (batch.refresh || batch.resync) { refreshAll(); }
  }

  function connect() {
    if (!body.dataset.events || typeof EventSource === "undefined") { return; }
    source = new EventSource(body.dataset.events);
    source.addEventListener("hello", function (event) {
      viewer = JSON.parse(event.data).viewer;
      setLive("on", "connected");
      if (failures > 0) { refreshAll(); }
      failures = 0;
      postWatch();
    });
    source.addEventListener("batch", function (event) { applyBatch(JSON.parse(event.data)); });
    source.onerror = function () {
      viewer = null;
      failures += 1;
      setLive("off", "lost; reconnecting");
      if (failures >= 3) {
        // The master may have stopped leading: reloading goes through its redirect.
        source.close();
        setLive("off", "lost the master; reloading");
        setTimeout(function () { location.reload(); }, 5000);
      }
    };
  }

  // A browser opens at most 6 connections to one HTTP/1.1 server, and each live page holds one:
  // a page in a background tab lets its stream go after a while, and catches up when shown.
  var hiddenTimer = null;
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      hiddenTimer = setTimeout(function () {
        if (source) { source.close(); source = null; }
        viewer = null;
        setLive("off", "paused while the tab is hidden");
      }, 10000);
    } else {
      clearTimeout(hiddenTimer);
      if (!source) { failures = 1; connect(); }  // failures > 0: refresh on hello
    }
  });

  window.emporion = {refresh: refresh, viewer: function () { return viewer; }};
  connect();
})();
