// The chart component (templates/components/chart.html): draws each <figure data-chart> with
// Chart.js from its json_script payload. Readable without colour: every series has its own line
// dash and marker shape (bars: a hatch pattern), and lines carry their name and last value at
// their end. No animation, so a printed page or a screenshot shows the final chart.
(function () {
  "use strict";
  // Okabe–Ito: distinguishable with the common colour-vision deficiencies.
  const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];
  const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [1, 1], [12, 6]];
  const MARKERS = ["circle", "rect", "triangle", "rectRot", "crossRot", "star"];

  function hatch(colour, index) {
    const tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    const ctx = tile.getContext("2d");
    ctx.fillStyle = colour + "55";
    ctx.fillRect(0, 0, 8, 8);
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    if (index % 3 === 1) { ctx.moveTo(0, 8); ctx.lineTo(8, 0); }
    else if (index % 3 === 2) { ctx.moveTo(4, 0); ctx.lineTo(4, 8); }
    ctx.stroke();
    return ctx.createPattern(tile, "repeat");
  }

  function format(value, data) {
    if (value === null || value === undefined) { return "—"; }
    return value.toLocaleString(undefined, { maximumFractionDigits: data.decimals });
  }

  // Direct labels: the series' name and last value beside its last point.
  const endLabels = {
    id: "orchcapEndLabels",
    afterDatasetsDraw(chart, _args, options) {
      if (!options || !options.enabled) { return; }
      const ctx = chart.ctx;
      ctx.save();
      ctx.font = "12px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      const taken = [];
      chart.data.datasets.forEach((dataset, i) => {
        const meta = chart.getDatasetMeta(i);
        let last = -1;
        dataset.data.forEach((v, j) => { if (v !== null && v !== undefined) { last = j; } });
        if (last < 0 || !meta.data[last]) { return; }
        const point = meta.data[last];
        const text = (options.names ? dataset.label + " " : "") + format(dataset.data[last], options.data);
        ctx.fillStyle = "#1b1b1b";
        const width = ctx.measureText(text).width;
        const x = Math.min(point.x + 6, chart.width - width - 2);
        // Labels of lines ending close together are stacked instead of printed over each other.
        let y = point.y - 10;
        while (taken.some((other) => Math.abs(other - y) < 14)) { y -= 14; }
        taken.push(y);
        ctx.fillText(text, x, Math.max(y, 8));
      });
      ctx.restore();
    },
  };

  function draw(figure) {
    const source = document.getElementById(figure.dataset.chart);
    const canvas = figure.querySelector("canvas");
    if (!source || !canvas || !window.Chart || figure.dataset.drawn) { return; }
    const data = JSON.parse(source.textContent);
    const spark = Boolean(data.sparkline);
    const datasets = data.series.map((series, i) => {
      const colour = COLOURS[i % COLOURS.length];
      return {
        label: series.name,
        data: series.values,
        borderColor: colour,
        backgroundColor: data.kind === "bar" ? hatch(colour, i) : colour,
        borderWidth: spark ? 1.5 : 2,
        borderDash: DASHES[i % DASHES.length],
        pointStyle: MARKERS[i % MARKERS.length],
        pointRadius: spark ? 0 : 3,
        spanGaps: true,
      };
    });
    if (spark && datasets.length) {
      // Mark the last point so the eye finds "now".
      datasets[0].pointRadius = datasets[0].data.map((_, j) => (j === datasets[0].data.length - 1 ? 3 : 0));
    }
    const chart = new window.Chart(canvas, {
      type: data.kind,
      data: { labels: data.labels, datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        layout: { padding: { top: 18, right: spark ? 40 : 70 } },
        plugins: {
          legend: { display: !spark && datasets.length > 1, labels: { usePointStyle: true } },
          tooltip: { enabled: !spark },
          title: { display: false },
          orchcapEndLabels: { enabled: data.kind === "line", names: datasets.length > 1, data },
        },
        scales: spark
          ? { x: { display: false }, y: { display: false, beginAtZero: true } }
          : {
              x: { ticks: { maxTicksLimit: 8, autoSkip: true } },
              y: { beginAtZero: true, title: { display: Boolean(data.unit), text: data.unit } },
            },
      },
      plugins: [endLabels],
    });
    figure.dataset.drawn = "true";
    figure.chart = chart;
  }

  function drawAll(root) {
    root.querySelectorAll("figure[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", () => drawAll(document));
  document.addEventListener("htmx:afterSettle", (event) => drawAll(event.target));
  // Printing: the canvases are resized to the paper's width before the page is laid out.
  window.addEventListener("beforeprint", () => {
    document.querySelectorAll("figure[data-chart]").forEach((f) => f.chart && f.chart.resize());
  });
})();

// Printing opens each chart's numbers (where ::details-content is unknown) and closes them after.
(function () {
  "use strict";
  let opened = [];
  window.addEventListener("beforeprint", () => {
    opened = Array.from(document.querySelectorAll("details.chart-numbers:not([open])"));
    opened.forEach((d) => { d.open = true; });
  });
  window.addEventListener("afterprint", () => {
    opened.forEach((d) => { d.open = false; });
    opened = [];
  });
})();
