/* Shared helpers of the MiniMQ UI pages.
 *
 * Message contents are untrusted: every helper here puts text into the page
 * with textContent, never innerHTML.  The broker banner is driven by two
 * sources: a health poll on every page, and the result of each live poll.
 */
"use strict";

const MiniMQ = (() => {
  const body = document.body;
  const pollMs = Number(body.dataset.pollMs) || 1000;
  const banner = document.getElementById("broker-banner");
  const bannerDetail = document.getElementById("broker-banner-detail");
  const statusText = document.getElementById("broker-status");

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message || code || `HTTP ${status}`);
      this.status = status;
      this.code = code;
    }
  }

  /** GET a UI JSON endpoint; throws ApiError carrying the stable error code. */
  async function getJson(url) {
    let response;
    try {
      response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, "UI_UNAVAILABLE", "the UI server does not answer");
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (err) {
      payload = null;
    }
    if (response.status === 401) {
      // The UI login ended (expired, logged out elsewhere): the page asks for it again.
      window.location.reload();
    }
    if (!response.ok) {
      const error = (payload && payload.error) || {};
      throw new ApiError(response.status, error.code, error.message);
    }
    return payload;
  }

  function isOutage(err) {
    return err instanceof ApiError && (err.status === 0 || err.status === 503 || err.status === 504);
  }

  function setBrokerUp(up, detail) {
    banner.classList.toggle("d-none", up);
    if (!up && detail) {
      bannerDetail.textContent = detail;
    }
    statusText.textContent = up ? "broker: up" : "broker: unavailable";
    statusText.classList.toggle("text-danger", !up);
    if (up && body.dataset.reloadWhenUp === "true") {
      window.location.reload();
    }
  }

  /** Run task() now and then every intervalMs after it settles (never overlapping). */
  function poll(task, intervalMs = pollMs) {
    async function run() {
      try {
        await task();
        setBrokerUp(true);
      } catch (err) {
        if (isOutage(err)) {
          setBrokerUp(false, err.message);
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

  function formatClock(ms) {
    return new Date(ms).toISOString().slice(11, 19);
  }

  function wireTopicPicker() {
    const picker = document.getElementById("topic-picker");
    if (!picker) {
      return;
    }
    picker.addEventListener("change", () => {
      if (picker.value) {
        window.location.assign(picker.dataset.topicUrl.replace("__TOPIC__", encodeURIComponent(picker.value)));
      }
    });
  }

  wireTopicPicker();
  poll(() => getJson(body.dataset.healthUrl), Math.max(pollMs, 2000));

  return { getJson, poll, textElement, formatClock, pollMs };
})();
