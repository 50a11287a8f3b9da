// The HTTP API, seen from the page: every URL is relative to the page (it may live under a prefix).

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

/** "a=1&b=x" from an object; empty values are left out, arrays repeat the key. */
export function query(params = {}) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => q.append(key, v));
    else q.set(key, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const enc = (s) => encodeURIComponent(s);

/** Fetch JSON; a non-2xx answer becomes an ApiError carrying the API's error shape. */
export async function getJSON(path, params) {
  let response;
  try {
    response = await fetch(path + query(params), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network", `the server did not answer (${err.message})`);
  }
  if (response.ok) return response.json();
  let type = "error";
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      type = body.error.type || type;
      message = body.error.message || message;
    }
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent("rundossier:auth-required"));
  throw new ApiError(response.status, type, message);
}

/** POST (or another write `method`) with an optional JSON body; the answer's JSON, or an ApiError as getJSON. */
export async function sendJSON(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { Accept: "application/json", ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network", `the server did not answer (${err.message})`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.ok) return data;
  if (response.status === 401) window.dispatchEvent(new CustomEvent("rundossier:auth-required"));
  const error = data && data.error ? data.error : {};
  throw new ApiError(response.status, error.type || "error", error.message || `${response.status} ${response.statusText}`);
}

/** Links for plain <a download> elements: the browser's own download flow, not a JS blob. */
export function runTraceHref(runId) {
  return `api/runs/${enc(runId)}/trace`;
}

export function stepTraceHref(runId, stepId, tryNumber) {
  return `api/runs/${enc(runId)}/steps/${enc(stepId)}/trace${query({ try: tryNumber })}`;
}

/** The structured trace (JSON), for an <a download> with a filename of its own. */
export function runTraceDocHref(runId) {
  return `api/runs/${enc(runId)}/trace.json`;
}

export function stepTraceDocHref(runId, stepId, tryNumber) {
  return `api/runs/${enc(runId)}/steps/${enc(stepId)}/trace.json${query({ try: tryNumber })}`;
}

export function logDownloadHref(runId, stepId, tryNumber, stream) {
  return `api/runs/${enc(runId)}/steps/${enc(stepId)}/logs/download${query({ try: tryNumber, stream })}`;
}

export const api = {
  about: () => getJSON("api/about"),
  runs: (params) => getJSON("api/runs", params),
  // the pages show the failed step's timing only: a 1,000-step run's detail is a third of the size
  run: (runId) => getJSON(`api/runs/${enc(runId)}`, { dossier_steps: "failed" }),
  flows: () => getJSON("api/flows"),
  lookup: (params) => getJSON("api/lookup", params),
  runTraceDoc: (runId) => getJSON(`api/runs/${enc(runId)}/trace.json`),
  stepTraceDoc: (runId, stepId, tryNumber) =>
    getJSON(`api/runs/${enc(runId)}/steps/${enc(stepId)}/trace.json`, { try: tryNumber }),
  logs: (runId, stepId, params) => getJSON(`api/runs/${enc(runId)}/steps/${enc(stepId)}/logs`, params),
  runArtifacts: (runId, params) => getJSON(`api/runs/${enc(runId)}/artifacts`, params),
  failures: (params) => getJSON("api/failures", params),
  resolveFailure: (fingerprint) => sendJSON("POST", `api/failures/${enc(fingerprint)}/resolve`),
  reopenFailure: (fingerprint) => sendJSON("POST", `api/failures/${enc(fingerprint)}/reopen`),
  retention: () => getJSON("api/retention"),
};

/**
 * Live updates over server-sent events, shared by every page.
 * States: connecting, live, error (reconnecting), offline (retrying; several attempts failed),
 * disconnected (stopped until `start()`: the browser is offline, or a token is needed).
 */
export class LiveStream {
  constructor() {
    this.state = "connecting";
    this.listeners = new Set();
    this.stateListeners = new Set();
    this.source = null;
    this.retryTimer = null;
    this.failures = 0;
  }

  onRun(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onState(fn) {
    this.stateListeners.add(fn);
    fn(this.state, null);
    return () => this.stateListeners.delete(fn);
  }

  setState(state) {
    const before = this.state;
    if (before === state) return;
    this.state = state;
    this.stateListeners.forEach((fn) => fn(state, before));
  }

  /** Connect; `retrying` keeps the current state shown (Reconnecting, Offline) until the server answers. */
  start(retrying = false) {
    this.stop();
    if (!retrying) this.setState("connecting");
    const source = new EventSource("api/stream", { withCredentials: true });
    this.source = source;
    source.addEventListener("hello", () => {
      this.failures = 0;
      this.setState("live");
    });
    source.addEventListener("run", (event) => {
      let run;
      try {
        run = JSON.parse(event.data);
      } catch {
        return;
      }
      this.listeners.forEach((fn) => fn(run));
    });
    source.onerror = () => {
      if (this.source !== source) return;
      this.failures += 1;
      // "error" reads "Reconnecting"; after a few failed attempts in a row, "offline" (still retrying)
      const state = this.failures > 3 ? "offline" : "error";
      if (source.readyState === EventSource.CLOSED) {
        // the browser gave up (an HTTP error, e.g. 401 or a proxy's 502): retry ourselves, slower and slower
        this.setState(state);
        source.close();
        this.source = null;
        const delay = Math.min(10000, 1000 * 2 ** Math.min(this.failures, 4));
        this.retryTimer = setTimeout(() => this.start(true), delay);
      } else {
        this.setState(state); // the browser reconnects by itself (retry: 3000)
      }
    };
  }

  stop() {
    clearTimeout(this.retryTimer);
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  disconnect() {
    this.stop();
    this.setState("disconnected");
  }
}

export const live = new LiveStream();
