/* Topic page: live tail table and value chart, fed by /api/topics/<t>/tail.
 *
 * The browser keeps the tail cursor ("partition:next_offset,...") that the
 * endpoint returns and sends it back on the next poll, so every record is
 * shown once, however many UI threads or processes serve the requests.
 * The chart's time axis is the record time or a time field of the payload
 * ("Time axis"), remembered per topic in localStorage and in the URL
 * (?chart_time=ts).
 */
"use strict";

(() => {
  const page = document.getElementById("topic-page");
  const tbody = document.querySelector("#live-tail tbody");
  const latestBody = document.querySelector("#latest-values tbody");
  const tailStatus = document.getElementById("tail-status");
  const chartStatus = document.getElementById("chart-status");
  const messages = document.getElementById("topic-messages");
  const chart = new SeriesChart(document.getElementById("value-chart"), { maxPoints: 300 });
  const latest = new Map();
  const timeSelect = document.getElementById("chart-time");
  const timeKey = `minimq.chart-time.${timeSelect.dataset.topic}`;
  const MAX_ROWS = 50;
  const MAX_HISTORY = 6000;
  // Every point received (bounded), so the chart can be re-plotted on another time axis.
  const history = [];
  let timeField = new URLSearchParams(window.location.search).get("chart_time")
    ?? window.localStorage.getItem(timeKey) ?? "";
  let cursor = "";
  let received = 0;

  function row(record, fresh) {
    const tr = document.createElement("tr");
    if (fresh) {
      tr.className = "fresh";
    }
    tr.dataset.offset = record.offset;
    tr.append(
      MiniMQ.textElement("td", record.partition),
      MiniMQ.textElement("td", record.offset),
      MiniMQ.textElement("td", record.time.slice(11, 23), "text-nowrap"),
      MiniMQ.withNote(MiniMQ.textElement("td", record.key, "d-none d-sm-table-cell"), record.key_note),
    );
    const value = MiniMQ.textElement("td", "", "value");
    const link = MiniMQ.textElement("a", record.value_text);
    link.href = `${page.dataset.messageUrl}${record.partition}/${record.offset}`;
    value.appendChild(link);
    MiniMQ.withNote(value, record.value_note);
    tr.appendChild(value);
    return tr;
  }

  /** Points on the chosen time axis: the record time, or a payload field (points without it left out). */
  function onAxis(points) {
    if (!timeField) {
      return points;
    }
    return points.filter((p) => p.times[timeField] !== undefined)
      .map((p) => ({ series: p.series, t: p.times[timeField], y: p.y }));
  }

  function offerTimeFields(points) {
    const known = new Set(Array.from(timeSelect.options, (o) => o.value));
    for (const point of points) {
      for (const name of Object.keys(point.times)) {
        if (!known.has(name)) {
          known.add(name);
          const option = MiniMQ.textElement("option", `payload field "${name}"`);
          option.value = name;
          timeSelect.appendChild(option);
        }
      }
    }
    if (timeField && !known.has(timeField)) {
      // Remembered from before; offered until records show whether they still have it.
      const option = MiniMQ.textElement("option", `payload field "${timeField}"`);
      option.value = timeField;
      timeSelect.appendChild(option);
    }
    timeSelect.value = timeField;
  }

  function chooseTimeField(name) {
    timeField = name;
    if (name) {
      window.localStorage.setItem(timeKey, name);
    } else {
      window.localStorage.removeItem(timeKey);
    }
    const url = new URL(window.location.href);
    if (name) {
      url.searchParams.set("chart_time", name);
    } else {
      url.searchParams.delete("chart_time");
    }
    window.history.replaceState(null, "", url);
    latest.clear();
    const shown = onAxis(history);
    chart.replace(shown);
    renderLatest(shown);
    updateChartStatus();
  }

  function updateChartStatus() {
    const left = timeField ? history.length - onAxis(history).length : 0;
    chartStatus.textContent = `${MiniMQ.formatCount(chart.pointCount())} points`
      + (left ? ` (${MiniMQ.formatCount(left)} without "${timeField}" not shown)` : "");
  }

  timeSelect.addEventListener("change", () => chooseTimeField(timeSelect.value));

  function renderLatest(points) {
    for (const point of points) {
      const known = latest.get(point.series);
      if (!known || known.t <= point.t) {
        latest.set(point.series, point);
      }
    }
    const rows = Array.from(latest.values()).sort((a, b) => a.series.localeCompare(b.series)).slice(0, 20);
    latestBody.replaceChildren(...rows.map((point) => {
      const tr = document.createElement("tr");
      tr.append(
        MiniMQ.textElement("td", point.series),
        MiniMQ.textElement("td", point.y, "num"),
        MiniMQ.textElement("td", MiniMQ.formatDateTime(point.t)),
      );
      return tr;
    }));
  }

  function render(batch) {
    const fresh = cursor !== "";
    for (const record of batch.records) {
      tbody.insertBefore(row(record, fresh), tbody.firstChild);
    }
    while (tbody.rows.length > MAX_ROWS) {
      tbody.deleteRow(tbody.rows.length - 1);
    }
    received += batch.records.length;
    cursor = batch.cursor;
    history.push(...batch.points);
    if (history.length > MAX_HISTORY) {
      history.splice(0, history.length - MAX_HISTORY);
    }
    offerTimeFields(batch.points);
    const shown = onAxis(batch.points);
    chart.add(shown);
    renderLatest(shown);
    messages.textContent = MiniMQ.formatCount(batch.messages);
    tailStatus.textContent = `live · ${MiniMQ.formatCount(received)} received · ${MiniMQ.formatClock(Date.now())} UTC`;
    updateChartStatus();
  }

  MiniMQ.onBrokerChange((up) => {
    if (!up) {
      tailStatus.textContent = `paused: the broker is not answering (since ${MiniMQ.formatClock(Date.now())} UTC)`;
    }
  });

  MiniMQ.poll(async () => {
    const url = `${page.dataset.tailUrl}?cursor=${encodeURIComponent(cursor)}`;
    render(await MiniMQ.getJson(url));
  });
})();
