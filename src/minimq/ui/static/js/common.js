/* Shared helpers of the MiniMQ UI pages.
 *
 * Message contents are untrusted: every helper here puts text into the page
 * with textContent, never innerHTML.  The broker status (badge, banner, and
 * whatever a page registers with onBrokerChange) is driven by two sources: a
 * health poll on every page, and the result of each live poll.
 */
"use strict";

const MiniMQ = (() => {
  const body = document.body;
  const pollMs = Number(body.dataset.pollMs) || 1000;
  const banner = document.getElementById("broker-banner");
  const statusBadge = document.getElementById("broker-status");
  const listeners = [];
  const numberFormat = new Intl.NumberFormat("en-US");
  let brokerUp = null;
  let answering = "";

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message || code || `HTTP ${status}`);
      this.status = status;
      this.code = code;
    }
  }

  async function request(url, headers) {
    let response;
    try {
      response = await fetch(url, { headers: { Accept: "application/json", ...headers }, cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, "UI_UNAVAILABLE", "the UI server does not answer");
    }
    if (response.status === 401) {
      // The UI login ended (expired, logged out elsewhere): the page asks for it again.
      window.location.reload();
    }
    return response;
  }

  async function failure(response) {
    let payload = null;
    try {
      payload = await response.json();
    } catch (err) {
      payload = null;
    }
    const error = (payload && payload.error) || {};
    return new ApiError(response.status, error.code, error.message);
  }

  /** GET a UI JSON endpoint; throws ApiError carrying the stable error code. */
  async function getJson(url) {
    const response = await request(url, {});
    if (!response.ok) {
      throw await failure(response);
    }
    return response.json();
  }

  /** A getter of `url` that sends the last ETag back: resolves null while nothing changed. */
  function changesOf(url) {
    let etag = null;
    return async () => {
      const response = await request(url, etag ? { "If-None-Match": etag } : {});
      if (response.status === 304) {
        return null;
      }
      if (!response.ok) {
        throw await failure(response);
      }
      etag = response.headers.get("ETag");
      return response.json();
    };
  }

  function isOutage(err) {
    return err instanceof ApiError && (err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504);
  }

  function setBrokerUp(up) {
    if (up === brokerUp) {
      return;
    }
    brokerUp = up;
    banner.classList.toggle("d-none", up);
    showStatus();
    statusBadge.classList.toggle("text-bg-success", up);
    statusBadge.classList.toggle("text-bg-danger", !up);
    statusBadge.classList.remove("text-bg-secondary");
    for (const listener of listeners) {
      listener(up);
    }
    if (up && body.dataset.reloadWhenUp === "true") {
      window.location.reload();
    }
  }

  function showStatus() {
    if (brokerUp === null) {
      return;
    }
    // Which broker answers matters once there are several (gateways over one cluster).
    statusBadge.textContent = brokerUp ? `broker: up${answering ? ` (${answering})` : ""}` : "broker: unavailable";
  }

  /** The health poll: also names the broker that answers. */
  async function checkHealth() {
    const health = await getJson(body.dataset.healthUrl);
    if (typeof health.url === "string" && health.url !== answering) {
      answering = health.url;
      showStatus();
    }
  }

  /** Call listener(up) whenever the broker goes down or comes back. */
  function onBrokerChange(listener) {
    listeners.push(listener);
  }

  /** Run task() now and then every intervalMs after it settles (never overlapping). */
  function poll(task, intervalMs = pollMs) {
    async function run() {
      try {
        await task();
        setBrokerUp(true);
      } catch (err) {
        if (isOutage(err)) {
          setBrokerUp(false);
        } else {
          console.warn("poll failed:", err);
        }
      } finally {
        window.setTimeout(run, intervalMs);
      }
    }
    run();
  }

  /** A <tag> holding `text` as text, with optional class names. */
  function textElement(tag, text, className) {
    const node = document.createElement(tag);
    node.textContent = text === null || text === undefined ? "" : String(text);
    if (className) {
      node.className = className;
    }
    return node;
  }

  /* A value that is not JSON, marked as the server-side pages mark it ("text, not JSON",
   * "binary, N bytes, hex"): a badge before the text; nothing for JSON. */
  function withNote(node, note) {
    if (note) {
      const badge = textElement("span", note, "badge text-bg-secondary value-note me-1");
      badge.dataset.testid = "value-note";
      node.prepend(badge);
    }
    return node;
  }

  function formatCount(n) {
    return n === null || n === undefined ? "–" : numberFormat.format(n);
  }

  function formatBytes(size) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let amount = size;
    let unit = 0;
    while (amount >= 1024 && unit < units.length - 1) {
      amount /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${size} B` : `${amount.toFixed(1)} ${units[unit]}`;
  }

  function formatClock(ms) {
    return new Date(ms).toISOString().slice(11, 19);
  }

  /** ISO 8601 UTC to the second: `2026-01-31 12:00:05`. */
  function formatDateTime(ms) {
    return ms === null || ms === undefined ? "–" : new Date(ms).toISOString().slice(0, 19).replace("T", " ");
  }

  poll(checkHealth, Math.max(pollMs, 2000));

  return {
    getJson, changesOf, poll, onBrokerChange, textElement, withNote,
    formatCount, formatBytes, formatClock, formatDateTime, pollMs,
  };
})();
