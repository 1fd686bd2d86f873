// Live updates: the account's events from `GET /v1/events/stream` (Server-Sent Events), read with
// fetch rather than EventSource so that a dashboard signed in with an API key can send it in a
// header, like every other call. Pages subscribe; while the stream is down they poll instead
// (`connected()` is false), and it reconnects by itself, resuming after the last event it got.

import { session } from "./api/client";

export interface LiveEvent {
  id: string;
  type: string;
  data: Record<string, unknown>;
  previous_status?: string;
}

type Listener = (event: LiveEvent) => void;

const listeners = new Set<Listener>();
const stateListeners = new Set<(connected: boolean) => void>();
let controller: AbortController | null = null;
let lastEventId: string | null = null;
let isConnected = false;
let retryMs = 1000;
let retryTimer: number | undefined;

function setConnected(value: boolean): void {
  if (value === isConnected) return;
  isConnected = value;
  document.documentElement.dataset.live = value ? "on" : "off";
  for (const listener of stateListeners) listener(value);
}

/** Whether events are arriving now (else: poll). */
export function connected(): boolean {
  return isConnected;
}

export function onEvent(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function onConnection(listener: (connected: boolean) => void): () => void {
  stateListeners.add(listener);
  return () => stateListeners.delete(listener);
}

function dispatch(frame: { id?: string; event?: string; data: string[] }): void {
  if (frame.data.length === 0) return;
  let parsed: LiveEvent;
  try {
    parsed = JSON.parse(frame.data.join("\n")) as LiveEvent;
  } catch {
    return;
  }
  if (frame.id) lastEventId = frame.id;
  for (const listener of listeners) listener(parsed);
}

async function read(signal: AbortSignal): Promise<void> {
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  const key = session.key;
  if (key) headers.Authorization = `Bearer ${key}`;
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  const response = await fetch("/v1/events/stream", { headers, signal, credentials: "same-origin", cache: "no-store" });
  if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
  setConnected(true);
  retryMs = 1000;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let frame: { id?: string; event?: string; data: string[] } = { data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") {
        dispatch(frame);
        frame = { data: [] };
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        const field = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (name === "data") frame.data.push(field);
        else if (name === "id") frame.id = field;
        else if (name === "event") frame.event = field;
      }
    }
  }
}

/** Opens the stream (once) for the signed-in account; `stop()` closes it. */
export function start(): void {
  if (controller) return;
  const own = new AbortController();
  controller = own;
  const loop = async (): Promise<void> => {
    try {
      await read(own.signal);
    } catch {
      // down: the pages poll until it is back
    }
    setConnected(false);
    if (controller !== own) return;
    retryTimer = window.setTimeout(() => void loop(), retryMs);
    retryMs = Math.min(retryMs * 2, 30_000);
  };
  void loop();
}

export function stop(): void {
  controller?.abort();
  controller = null;
  window.clearTimeout(retryTimer);
  lastEventId = null;
  setConnected(false);
}
