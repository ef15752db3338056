// Draws every chart a page embeds: <figure class="chart" data-chart="ID"> holding
// <script type="application/json" id="ID"> with {title, kind, x: [unix seconds], series: [{label, values}]}
// (a series with `marks` is drawn as points where its values are not null; kind "lines" leaves a gap
// where a value is null).
"use strict";

const COLOURS = ["#2f6fdf", "#e0803a", "#3aa676", "#b04fc0"];

function seriesOptions(payload) {
  // Two bar series sit side by side within their day: the first left of the tick, the second right.
  const twoBars = payload.kind === "bars" && payload.series.length === 2;
  return payload.series.map((series, index) => {
    const colour = COLOURS[index % COLOURS.length];
    if (series.marks) {
      // Points only, where a value is given: e.g. the autoscaler's decisions over the replicas line.
      return { label: series.label, stroke: colour, fill: colour, paths: () => null, points: { show: true, size: 9, fill: colour } };
    }
    const paths = payload.kind === "bars"
      ? uPlot.paths.bars({ size: [twoBars ? 0.4 : 0.7, 40], align: twoBars ? (index === 0 ? -1 : 1) : 0 })
      : payload.kind === "lines" ? uPlot.paths.linear() : uPlot.paths.stepped({ align: 1 });
    return {
      label: series.label,
      stroke: colour,
      fill: payload.kind === "bars" ? colour + "cc" : colour + "22",
      width: payload.kind === "bars" ? 0 : 2,
      paths: paths,
      // Lines from Prometheus may be sparse (a measurement between gaps): their points are shown.
      points: payload.kind === "lines" ? { show: true, size: 4, fill: colour } : { show: false },
    };
  });
}

function dayLabel(seconds) {
  return new Date(seconds * 1000).toISOString().slice(5, 10);
}

function draw(figure) {
  const payload = JSON.parse(document.getElementById(figure.dataset.chart).textContent);
  const width = Math.max(figure.clientWidth - 8, 320);
  const options = {
    width: width,
    height: 240,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
    series: [{ label: "time (UTC)" }, ...seriesOptions(payload)],
    axes: [{}, { size: 70 }],
    scales: { y: { range: (self, min, max) => [0, Math.max(max, 1) * 1.1] } },
  };
  if (payload.kind === "bars") {
    // One bar (group) per UTC day: ticks on days, labelled as dates, half a day of room either side.
    const DAY = 86400;
    options.series[0] = { label: "day (UTC)", value: (self, seconds) => seconds == null ? "--" : dayLabel(seconds) };
    options.axes[0] = { incrs: [DAY, 2 * DAY, 7 * DAY], values: (self, ticks) => ticks.map(dayLabel) };
    const first = payload.x[0], last = payload.x[payload.x.length - 1];
    options.scales.x = { time: true, range: () => [first - DAY / 2, last + DAY / 2] };
  }
  const data = [payload.x, ...payload.series.map((series) => series.values)];
  figure.uplot = new uPlot(options, data, figure);
  figure.dataset.drawn = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("figure.chart").forEach(draw);
});
