/* Line charts of payload values: one dataset per series ("<sensor> · <field>").
 *
 * Points arrive as {series, t, y} from the UI's JSON endpoints; x is the
 * time in ms (the record's, or one the payload carries) on a linear axis (no date adapter needed), labelled
 * as UTC clock time.  Each series keeps its last `maxPoints` points so a page
 * left open for hours stays light.
 */
"use strict";

const SeriesChart = (() => {
  const PALETTE = ["#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1", "#20c997",
                   "#d63384", "#0dcaf0", "#6c757d", "#ffc107"];
  const MAX_SERIES = 20;

  class SeriesChart {
    constructor(canvas, { maxPoints = 300, compact = false } = {}) {
      this.maxPoints = maxPoints;
      this.datasets = new Map();
      this.chart = new Chart(canvas, {
        type: "line",
        data: { datasets: [] },
        options: {
          animation: false,
          maintainAspectRatio: false,
          parsing: false,
          normalized: true,
          interaction: { mode: "nearest", intersect: false },
          elements: { point: { radius: compact ? 0 : 2 }, line: { borderWidth: compact ? 1.5 : 2 } },
          scales: {
            x: { type: "linear", ticks: { maxTicksLimit: compact ? 4 : 8, callback: (v) => this.formatTick(v) } },
            y: { ticks: { maxTicksLimit: compact ? 4 : 8 } },
          },
          plugins: {
            legend: { display: !compact, position: "bottom" },
            tooltip: { callbacks: { title: (items) => items.length ? MiniMQ.formatDateTime(items[0].parsed.x) : "" } },
          },
        },
      });
    }

    /** Add points, keeping every series sorted by time and bounded in length. */
    add(points) {
      for (const point of points) {
        let dataset = this.datasets.get(point.series);
        if (!dataset) {
          if (this.datasets.size >= MAX_SERIES) {
            continue;
          }
          const color = PALETTE[this.datasets.size % PALETTE.length];
          dataset = { label: point.series, data: [], borderColor: color, backgroundColor: color };
          this.datasets.set(point.series, dataset);
          this.chart.data.datasets.push(dataset);
        }
        dataset.data.push({ x: point.t, y: point.y });
      }
      for (const dataset of this.datasets.values()) {
        dataset.data.sort((a, b) => a.x - b.x);
        if (dataset.data.length > this.maxPoints) {
          dataset.data.splice(0, dataset.data.length - this.maxPoints);
        }
      }
      this.fitAxis();
      this.chart.update("none");
    }

    /** A sane x range: one instant (a single point, or a batch stamped at once) gets a
     *  minute around it, not Chart.js's padding of a day; spans over a day show dates. */
    fitAxis() {
      let low = Infinity;
      let high = -Infinity;
      for (const dataset of this.datasets.values()) {
        if (dataset.data.length) {
          low = Math.min(low, dataset.data[0].x);
          high = Math.max(high, dataset.data[dataset.data.length - 1].x);
        }
      }
      const x = this.chart.options.scales.x;
      if (low === Infinity) {
        x.min = undefined;
        x.max = undefined;
        this.span = 0;
        return;
      }
      if (high - low < 1000) {
        low -= 30000;
        high += 30000;
      }
      x.min = low;
      x.max = high;
      this.span = high - low;
    }

    formatTick(ms) {
      const iso = new Date(ms).toISOString();
      return this.span > 86400000 ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 19);
    }

    /** Replace all points (the dashboard receives a full window each time). */
    replace(points) {
      for (const dataset of this.datasets.values()) {
        dataset.data.length = 0;
      }
      this.add(points);
    }

    pointCount() {
      let count = 0;
      for (const dataset of this.datasets.values()) {
        count += dataset.data.length;
      }
      return count;
    }
  }

  return SeriesChart;
})();
