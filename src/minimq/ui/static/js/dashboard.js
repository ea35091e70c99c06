/* Dashboard: the topic table, sortable and filterable, refreshed from /api/summary.
 *
 * The summary answers 304 while nothing changed, so an idle dashboard costs
 * one bodiless request a second.  The chart panel shows one topic's values on
 * demand, fed by that topic's tail endpoint only while it is open.
 */
"use strict";

(() => {
  const table = document.getElementById("topic-table");
  const tbody = table.querySelector("tbody");
  const filter = document.getElementById("topic-filter");
  const count = document.getElementById("topic-count");
  const status = document.getElementById("table-status");
  const noTopics = document.getElementById("no-topics");
  const headers = Array.from(table.querySelectorAll("th[data-sort]"));
  const panel = document.getElementById("chart-panel");
  const chartTitle = document.getElementById("chart-title");
  let rows = null;
  let sortKey = "name";
  let ascending = true;
  let chart = null;
  let charted = null;
  let tailCursor = "";

  function cell(text, className) {
    return MiniMQ.textElement("td", text, className);
  }

  function groupsText(groups) {
    return groups.length ? groups.map((g) => `${g.group}: ${MiniMQ.formatCount(g.lag)}`).join(", ") : "–";
  }

  function rowElement(row) {
    const tr = document.createElement("tr");
    tr.dataset.topic = row.name;
    const name = document.createElement("td");
    const link = MiniMQ.textElement("a", row.name);
    link.href = table.dataset.topicUrl.replace("__TOPIC__", encodeURIComponent(row.name));
    name.appendChild(link);
    const chartCell = document.createElement("td");
    const button = MiniMQ.textElement("button", "Chart", "btn btn-sm btn-outline-secondary py-0");
    button.type = "button";
    button.setAttribute("aria-label", `Chart of ${row.name}`);
    button.setAttribute("aria-pressed", String(charted === row.name));
    button.addEventListener("click", () => openChart(row.name));
    chartCell.appendChild(button);
    tr.append(
      name,
      cell(MiniMQ.formatCount(row.partitions), "num d-none d-sm-table-cell"),
      cell(MiniMQ.formatCount(row.messages), "num topic-messages"),
      cell(MiniMQ.formatBytes(row.bytes), "num d-none d-sm-table-cell"),
      cell(MiniMQ.formatCount(row.rate_per_minute), "num"),
      cell(MiniMQ.formatDateTime(row.last_timestamp), "d-none d-lg-table-cell text-nowrap"),
      cell(groupsText(row.groups), "num d-none d-md-table-cell"),
      chartCell,
    );
    return tr;
  }

  function compare(a, b) {
    const x = a[sortKey];
    const y = b[sortKey];
    let order;
    if (typeof x === "string" || typeof y === "string") {
      order = String(x).localeCompare(String(y));
    } else {
      order = (x === null ? -Infinity : x) - (y === null ? -Infinity : y);
    }
    return ascending ? order : -order;
  }

  function render() {
    if (rows === null) {
      return;
    }
    const needle = filter.value.trim().toLowerCase();
    const shown = rows.filter((row) => row.name.toLowerCase().includes(needle)).sort(compare);
    tbody.replaceChildren(...shown.map(rowElement));
    count.textContent = MiniMQ.formatCount(rows.length);
    status.textContent = needle
      ? `${MiniMQ.formatCount(shown.length)} of ${MiniMQ.formatCount(rows.length)} topics match “${filter.value.trim()}”.`
      : `${MiniMQ.formatCount(rows.length)} topics · updated ${MiniMQ.formatClock(Date.now())} UTC`;
    if (noTopics && rows.length) {
      noTopics.classList.add("d-none");
    }
  }

  function sortBy(key) {
    ascending = key === sortKey ? !ascending : key === "name";
    sortKey = key;
    for (const th of headers) {
      th.setAttribute("aria-sort", th.dataset.sort === key ? (ascending ? "ascending" : "descending") : "none");
    }
    render();
  }

  function openChart(name) {
    if (chart === null) {
      chart = new SeriesChart(document.getElementById("topic-chart"), { maxPoints: 300 });
    }
    if (charted !== name) {
      chart.replace([]);
      tailCursor = "";
    }
    charted = name;
    chartTitle.textContent = `Values of ${name}`;
    panel.classList.remove("d-none");
    render();
  }

  async function pollChart() {
    if (charted === null) {
      return;
    }
    const name = charted;
    const url = `${table.dataset.tailUrl.replace("__TOPIC__", encodeURIComponent(name))}?cursor=${encodeURIComponent(tailCursor)}`;
    const batch = await MiniMQ.getJson(url);
    if (name === charted) {
      tailCursor = batch.cursor;
      chart.add(batch.points);
    }
  }

  for (const th of headers) {
    th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.sort));
  }
  filter.addEventListener("input", render);
  document.getElementById("chart-close").addEventListener("click", () => {
    charted = null;
    panel.classList.add("d-none");
    render();
  });

  const summary = MiniMQ.changesOf(table.dataset.summaryUrl);
  MiniMQ.poll(async () => {
    const fresh = await summary();
    if (fresh !== null) {
      rows = fresh.topics;
      render();
    }
    await pollChart();
  });
})();
