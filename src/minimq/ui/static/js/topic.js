/* Topic page: live tail table and value chart, fed by /api/topics/<t>/tail.
 *
 * The browser keeps the tail cursor ("partition:next_offset,...") that the
 * endpoint returns and sends it back on the next poll, so every record is
 * shown once, however many UI threads or processes serve the requests.
 */
"use strict";

(() => {
  const page = document.getElementById("topic-page");
  const tbody = document.querySelector("#live-tail tbody");
  const tailStatus = document.getElementById("tail-status");
  const chartStatus = document.getElementById("chart-status");
  const chart = new SeriesChart(document.getElementById("value-chart"), { maxPoints: 300 });
  const MAX_ROWS = 50;
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
      MiniMQ.textElement("td", record.key),
    );
    const value = MiniMQ.textElement("td", "", "value");
    const link = MiniMQ.textElement("a", record.value_text);
    link.href = `${page.dataset.messageUrl}${record.partition}/${record.offset}`;
    value.appendChild(link);
    tr.appendChild(value);
    return tr;
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
    chart.add(batch.points);
    tailStatus.textContent = `live · ${received} received · ${MiniMQ.formatClock(Date.now())}`;
    chartStatus.textContent = `${chart.pointCount()} points`;
  }

  MiniMQ.poll(async () => {
    const url = `${page.dataset.tailUrl}?cursor=${encodeURIComponent(cursor)}`;
    render(await MiniMQ.getJson(url));
  });
})();
