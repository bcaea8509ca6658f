// Server-sent events over fetch(), so the request can carry the Authorization header
// (EventSource cannot). Reconnects with Last-Event-ID after a dropped connection.

import { authHeaders } from "./api.js";
import { humanMessage } from "./errors.js";
import { renew } from "./session.js";

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;

/** Parse one SSE block ("id:", "event:", "data:" lines); comments (heartbeats) give null. */
function parseBlock(block) {
  let id = null;
  let event = "message";
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { id, event, data: data.join("\n") } : null;
}

/**
 * Follow an SSE endpoint until `stop()` is called: `onEvent({event, id, data})` gets each event
 * with its JSON data parsed, `onState("live"|"retrying"|"closed", detail)` the connection state.
 */
export function follow(path, onEvent, onState = () => {}) {
  const controller = new AbortController();
  let lastId = null;
  let retryMs = RETRY_MIN_MS;
  let renewedLast = false;

  async function once() {
    const headers = { ...authHeaders(), Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
    if (response.status === 401) {
      // An expired access token: renew it once and reconnect at once; else the session is over.
      if (await renew()) throw Object.assign(new Error("renewed"), { renewed: true });
      throw Object.assign(new Error("unauthorized"), { fatal: true });
    }
    if (!response.ok) {
      let envelope = null;
      try {
        envelope = await response.json();
      } catch {
        // not an envelope: the status says enough
      }
      throw new Error(humanMessage(response.status, envelope));
    }
    onState("live");
    retryMs = RETRY_MIN_MS;
    renewedLast = false;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        const parsed = parseBlock(block);
        if (!parsed) continue;
        if (parsed.id !== null) lastId = parsed.id;
        let data = parsed.data;
        try {
          data = JSON.parse(parsed.data);
        } catch {
          // leave non-JSON data as text
        }
        onEvent({ event: parsed.event, id: parsed.id, data });
      }
    }
  }

  (async () => {
    while (!controller.signal.aborted) {
      try {
        await once();
        if (controller.signal.aborted) break;
        onState("retrying", "the stream ended");
      } catch (error) {
        if (controller.signal.aborted) break;
        if (error.fatal) {
          onState("closed", error.message);
          return;
        }
        if (error.renewed && !renewedLast) {
          renewedLast = true; // a second 401 right after a renewal waits like any failure
          continue;
        }
        onState("retrying", error.message);
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    }
    // Stopped by the page: it says nothing, a follower that replaced this one may be live.
  })();

  return { stop: () => controller.abort() };
}
