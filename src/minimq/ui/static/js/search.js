/* Topic search: runs the server-side scan step by step until enough matches or the end.
 *
 * Each step is one bounded request to /api/topics/<t>/search that returns
 * its matches, a cursor to continue from, and how far the scan got, so the
 * page shows "scanned X of Y" as it goes and Continue picks up after a stop.
 */
"use strict";

(() => {
  const page = document.getElementById("topic-page");
  const form = document.getElementById("search-form");
  const runButton = document.getElementById("search-run");
  const moreButton = document.getElementById("search-more");
  const status = document.getElementById("search-status");
  const errorBox = document.getElementById("search-error");
  const tbody = document.querySelector("#search-results tbody");
  const WANTED = 100;
  let cursor = "";
  let found = 0; // over the whole search, Continue included
  let target = WANTED; // stop once this many are found; Continue asks for WANTED more
  let running = false;
  let generation = 0;

  function row(record) {
    const tr = document.createElement("tr");
    tr.dataset.partition = record.partition;
    tr.dataset.offset = record.offset;
    const offset = document.createElement("td");
    const link = MiniMQ.textElement("a", MiniMQ.formatCount(record.offset));
    link.href = `${page.dataset.messageUrl}${record.partition}/${record.offset}`;
    offset.appendChild(link);
    tr.append(
      MiniMQ.textElement("td", record.partition, "num"),
      offset,
      MiniMQ.textElement("td", record.time, "text-nowrap"),
      MiniMQ.withNote(MiniMQ.textElement("td", record.key, "d-none d-sm-table-cell key-cell"), record.key_note),
    );
    const value = MiniMQ.textElement("td", "", "value-cell");
    value.appendChild(MiniMQ.textElement("code", record.value_text));
    MiniMQ.withNote(value, record.value_note);
    tr.appendChild(value);
    return tr;
  }

  function query() {
    const params = new URLSearchParams(new FormData(form));
    if (cursor) {
      params.set("cursor", cursor);
    }
    params.set("limit", String(Math.max(1, target - found)));
    return `${page.dataset.searchUrl}?${params}`;
  }

  async function run(fresh) {
    if (running && !fresh) {
      return;
    }
    generation += 1;
    const mine = generation;
    if (fresh) {
      cursor = "";
      found = 0;
      tbody.replaceChildren();
    }
    target = found + WANTED;
    running = true;
    errorBox.classList.add("d-none");
    moreButton.classList.add("d-none");
    const started = performance.now();
    try {
      for (;;) {
        const step = await MiniMQ.getJson(query());
        if (mine !== generation) {
          return;
        }
        cursor = step.cursor;
        found += step.records.length;
        tbody.append(...step.records.map(row));
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        status.textContent = `${MiniMQ.formatCount(found)} found · scanned ${MiniMQ.formatCount(step.scanned)} of ${MiniMQ.formatCount(step.total)} · ${seconds} s${step.done ? " · done" : ""}`;
        if (step.done) {
          break;
        }
        if (found >= target) {
          status.textContent += ` · paused after ${MiniMQ.formatCount(found)} matches`;
          moreButton.classList.remove("d-none");
          break;
        }
      }
    } catch (err) {
      errorBox.textContent = err.message;
      errorBox.classList.remove("d-none");
      moreButton.classList.toggle("d-none", !cursor);
    } finally {
      if (mine === generation) {
        running = false;
      }
    }
  }

  runButton.addEventListener("click", () => run(true));
  moreButton.addEventListener("click", () => run(false));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target instanceof HTMLInputElement) {
      event.preventDefault();
      run(true);
    }
  });
})();
