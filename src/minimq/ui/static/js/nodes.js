/* Nodes page: rebuild the node cards from /api/nodes once a second.
 *
 * Node names and values come from producers, so they are untrusted: every
 * card is built with createElement and textContent, never innerHTML.
 */
"use strict";

(() => {
  const container = document.getElementById("node-cards");
  const count = document.getElementById("node-count");
  const empty = document.getElementById("no-nodes");
  const METRICS = [["cpu", "CPU"], ["mem", "Memory"], ["disk", "Disk"], ["net", "Network"]];

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function card(node) {
    const column = element("div", "col-sm-6 col-lg-4 col-xxl-3");
    column.dataset.node = node.node;
    column.dataset.testid = "node-card";
    const box = element("div", "card h-100");
    const header = element("div", "card-header d-flex justify-content-between align-items-baseline");
    header.append(element("strong", "node-name", node.node), element("span", "small text-body-secondary node-updated", node.updated));
    const list = element("ul", "list-group list-group-flush");
    for (const [metric, label] of METRICS) {
      const reading = node.metrics[metric];
      if (!reading) {
        continue;
      }
      const item = element("li", "list-group-item d-flex justify-content-between");
      item.dataset.metric = metric;
      const value = element("span", "fw-semibold metric-value", `${reading.value} ${reading.unit}`);
      value.dataset.testid = `metric-${metric}`;
      item.append(element("span", "", label), value);
      list.append(item);
    }
    box.append(header, list);
    column.append(box);
    return column;
  }

  MiniMQ.poll(async () => {
    const { nodes } = await MiniMQ.getJson(container.dataset.apiUrl);
    container.replaceChildren(...nodes.map(card));
    count.textContent = String(nodes.length);
    empty.classList.toggle("d-none", nodes.length > 0);
  });
})();
