// A task's sandbox: list files (htmx), read stdout/stderr or any file with a live tail, download.
// Everything goes through the master (/ui/sandbox/<framework>/<task>/...), which reads the agent's
// file API: the browser never talks to the agent.
(function () {
  "use strict";
  var box = document.getElementById("sandbox");
  var log = document.getElementById("log");
  if (!box || !log) { return; }
  var base = box.dataset.base;
  var current = null;   // the file shown
  var next = 0;         // where to read on from
  var timer = null;
  var follow = document.getElementById("follow");
  var label = document.getElementById("viewer-file");
  var download = document.getElementById("viewer-download");

  function url(what, params) {
    var query = Object.keys(params).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]);
    }).join("&");
    return base + "/" + what + "?" + query;
  }

  function show(text, replace) {
    var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    if (replace) { log.textContent = text; } else if (text) { log.appendChild(document.createTextNode(text)); }
    if (follow.checked || atBottom) { log.scrollTop = log.scrollHeight; }
  }

  function fail(response) {
    return response.json().then(function (body) {
      throw new Error(body.detail || response.statusText);
    }, function () { throw new Error(response.status + " " + response.statusText); });
  }

  function poll(path) {
    if (path !== current) { return; }
    fetch(url("read", {path: path, offset: next})).then(function (response) {
      return response.ok ? response.json() : fail(response);
    }).then(function (chunk) {
      if (path !== current) { return; }
      if (chunk.data) { show(chunk.data, false); }
      next = chunk.next;
      timer = setTimeout(function () { poll(path); }, chunk.data ? 250 : 1000);
    }).catch(function (error) {
      if (path !== current) { return; }
      label.textContent = path + " — " + error.message + " (retrying)";
      timer = setTimeout(function () { poll(path); }, 3000);
    });
  }

  function open(path) {
    current = path;
    clearTimeout(timer);
    label.textContent = path;
    download.href = url("download", {path: path});
    document.querySelectorAll(".viewer-bar button[data-view]").forEach(function (b) {
      b.classList.toggle("current", b.dataset.view === path);
    });
    log.textContent = "";
    fetch(url("tail", {path: path, lines: 1000})).then(function (response) {
      return response.ok ? response.json() : fail(response);
    }).then(function (tail) {
      if (path !== current) { return; }
      show(tail.data, true);
      next = tail.size;
      log.dataset.loaded = path;
      timer = setTimeout(function () { poll(path); }, 500);
    }).catch(function (error) {
      if (path !== current) { return; }
      log.textContent = "";
      label.textContent = path + " — " + error.message;
      log.dataset.loaded = path;
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-view]");
    if (!target || !box.contains(target)) { return; }
    event.preventDefault();
    open(target.dataset.view);
  });
  open("stdout");
})();
