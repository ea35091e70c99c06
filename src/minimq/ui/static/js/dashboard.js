/* Dashboard: one card per topic, refreshed from /api/overview every poll. */
"use strict";

(() => {
  const container = document.getElementById("topic-cards");
  const template = document.getElementById("topic-card-template");
  const noTopics = document.getElementById("no-topics");
  const cards = new Map();

  function createCard(topic) {
    const node = template.content.firstElementChild.cloneNode(true);
    node.dataset.topic = topic.name;
    const link = node.querySelector(".topic-link");
    link.textContent = topic.name;
    link.href = topic.url;
    container.appendChild(node);
    const card = { node, chart: new SeriesChart(node.querySelector(".topic-chart"), { maxPoints: 60, compact: true }) };
    cards.set(topic.name, card);
    return card;
  }

  function latestText(latest) {
    if (!latest) {
      return "–";
    }
    return `${latest.summary} at ${MiniMQ.formatClock(latest.timestamp)}`;
  }

  function render(overview) {
    if (noTopics && overview.topics.length) {
      noTopics.classList.add("d-none");
    }
    for (const topic of overview.topics) {
      const card = cards.get(topic.name) || createCard(topic);
      card.node.querySelector(".topic-messages").textContent = topic.messages;
      card.node.querySelector(".topic-rate").textContent = topic.rate_per_minute;
      card.node.querySelector(".topic-partitions").textContent = topic.partitions;
      const latest = card.node.querySelector(".topic-latest");
      latest.textContent = latestText(topic.latest);
      latest.title = latest.textContent;
      card.chart.replace(topic.points);
    }
  }

  MiniMQ.poll(async () => render(await MiniMQ.getJson(container.dataset.overviewUrl)));
})();
