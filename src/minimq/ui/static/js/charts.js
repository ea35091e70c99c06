/* Line charts of payload values: one dataset per series ("<sensor> · <field>").
 *
 * Points arrive as {series, t, y} from the UI's JSON endpoints; x is the
 * record timestamp in ms on a linear axis (no date adapter needed), labelled
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
            x: { type: "linear", ticks: { maxTicksLimit: compact ? 4 : 8, callback: (v) => MiniMQ.formatClock(v) } },
            y: { ticks: { maxTicksLimit: compact ? 4 : 8 } },
          },
          plugins: {
            legend: { display: !compact, position: "bottom" },
            tooltip: { callbacks: { title: (items) => items.length ? MiniMQ.formatClock(items[0].parsed.x) : "" } },
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
      this.chart.update("none");
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
