// The overview's utilisation charts (uPlot): allocated and allocated + offered, as a percentage
// of the total, per resource, over the last hour. The page embeds the master's recorded samples
// and, last, its figures at the moment the page was made; the live stream appends the samples
// the master records next ("emporion:samples"), which replace that momentary one.
(function () {
  "use strict";
  var holder = document.getElementById("charts");
  var embedded = document.getElementById("utilization");
  if (!holder || !embedded || typeof uPlot === "undefined") { return; }
  var names = ["cpus", "mem", "disk", "gpus"];
  var windowSeconds = parseFloat(holder.dataset.window) || 3600;
  var xs = [];
  var data = {};
  var charts = {};
  var liveTail = false;
  names.forEach(function (name) { data[name] = {allocated: [], offered: []}; });

  function percent(part, total) { return total > 0 ? Math.min(100, 100 * part / total) : null; }

  function push(sample) {
    xs.push(sample.time);
    names.forEach(function (name) {
      var total = (sample.total || {})[name] || 0;
      var allocated = (sample.allocated || {})[name] || 0;
      var offered = (sample.offered || {})[name] || 0;
      data[name].allocated.push(percent(allocated, total));
      data[name].offered.push(percent(allocated + offered, total));
    });
  }

  function pop() {
    xs.pop();
    names.forEach(function (name) { data[name].allocated.pop(); data[name].offered.pop(); });
  }

  function trim() {
    var oldest = xs.length ? xs[xs.length - 1] - windowSeconds : 0;
    while (xs.length > 2 && xs[0] < oldest) {
      xs.shift();
      names.forEach(function (name) { data[name].allocated.shift(); data[name].offered.shift(); });
    }
  }

  function add(samples, momentary) {
    if (!samples.length) { return; }
    if (liveTail) { pop(); }
    samples.forEach(function (sample) {
      if (!xs.length || sample.time > xs[xs.length - 1]) { push(sample); }
    });
    liveTail = momentary;
    trim();
  }

  function options(name, width) {
    return {
      width: width, height: 150,
      legend: {live: false},
      cursor: {drag: {x: false, y: false}},
      scales: {
        // Always the last hour, ending at the newest sample: a young cluster fills in from the right.
        x: {time: true, range: function () {
          var end = xs.length ? xs[xs.length - 1] : Date.now() / 1000;
          return [end - windowSeconds, end];
        }},
        y: {range: [0, 100]},
      },
      axes: [{size: 30}, {size: 50, values: function (u, ticks) { return ticks.map(function (t) { return t + "%"; }); }}],
      series: [
        {},
        {label: "allocated + offered", stroke: "#9ec0f5", fill: "rgba(158,192,245,0.35)", width: 1},
        {label: "allocated", stroke: "#2f6fde", fill: "rgba(47,111,222,0.25)", width: 2},
      ],
    };
  }

  add(JSON.parse(embedded.textContent || "[]"), true);
  names.forEach(function (name) {
    var box = document.createElement("div");
    box.className = "chart";
    box.dataset.resource = name;
    var title = document.createElement("h3");
    title.textContent = name + " · allocated (dark) and offered (light), % of total";
    box.appendChild(title);
    holder.appendChild(box);
    var width = Math.max(240, box.clientWidth || (holder.clientWidth / 2 - 16));
    charts[name] = new uPlot(options(name, width), [xs, data[name].offered, data[name].allocated], box);
  });

  document.addEventListener("emporion:samples", function (event) {
    add(event.detail, false);
    names.forEach(function (name) {
      charts[name].setData([xs, data[name].offered, data[name].allocated]);
    });
  });
})();
