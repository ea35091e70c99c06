/* Group page: lag per partition refreshed live, and a chart of the total lag since the page opened. */
"use strict";

(() => {
  const page = document.getElementById("group-page");
  const tbody = document.querySelector("#group-offsets tbody");
  const total = document.getElementById("total-lag");
  const totalFoot = document.getElementById("total-lag-foot");
  const state = document.getElementById("group-state");
  const status = document.getElementById("group-status");
  const chart = new SeriesChart(document.getElementById("lag-chart"), { maxPoints: 600, compact: true });

  function render(group) {
    tbody.replaceChildren(...group.offsets.map((o) => {
      const tr = document.createElement("tr");
      tr.append(
        MiniMQ.textElement("td", o.topic),
        MiniMQ.textElement("td", o.partition, "num"),
        MiniMQ.textElement("td", o.committed_offset === null ? "none" : MiniMQ.formatCount(o.committed_offset), "num"),
        MiniMQ.textElement("td", MiniMQ.formatCount(o.end_offset), "num"),
        MiniMQ.textElement("td", MiniMQ.formatCount(o.lag), "num lag"),
      );
      return tr;
    }));
    total.textContent = MiniMQ.formatCount(group.total_lag);
    totalFoot.textContent = total.textContent;
    state.textContent = group.state;
    status.textContent = `· updated ${MiniMQ.formatClock(group.now)} UTC`;
    chart.add([{ series: "total lag", t: group.now, y: group.total_lag }]);
  }

  MiniMQ.onBrokerChange((up) => {
    if (!up) {
      status.textContent = "· paused: the broker is not answering";
    }
  });
  MiniMQ.poll(async () => render(await MiniMQ.getJson(page.dataset.groupUrl)));
})();
