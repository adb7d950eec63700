// The server's API: bearer token, JSON errors shown in #message, a busy counter, masks.
export const TOKEN_KEY = "segloop.token";

export const net = {
  token: localStorage.getItem(TOKEN_KEY) || "",
  busy: 0,
  onBusy: () => {},
};

export function setToken(token) {
  net.token = token;
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export function showMessage(text, kind = "error") {
  const el = document.getElementById("message");
  if (!el) return;
  el.textContent = text || "";
  el.dataset.kind = kind;
  el.hidden = !text;
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function busyDelta(d) {
  net.busy = Math.max(0, net.busy + d);
  net.onBusy(net.busy);
}

// One request. `opts.raw`: return the Response (for PNGs); `opts.quiet`: no #message on
// error (the caller handles it), `opts.quietStatus`: statuses handled by the caller.
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: "application/json" };
  if (net.token) headers.Authorization = `Bearer ${net.token}`;
  const init = { method, headers, signal: opts.signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  busyDelta(+1);
  try {
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, `cannot reach the server (${err.message})`);
    }
    if (!res.ok) {
      let data = null;
      let message = `${method} ${path}: HTTP ${res.status}`;
      try {
        data = await res.json();
        if (data && data.error) message = data.error;
      } catch (_) { /* not JSON */ }
      if (res.status === 401) message = `sign-in failed: ${message}`;
      throw new ApiError(res.status, message, data);
    }
    if (opts.raw) return res;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  } catch (err) {
    const handled = opts.quiet || (opts.quietStatus || []).includes(err.status);
    if (!handled && err.name !== "AbortError") showMessage(err.message);
    throw err;
  } finally {
    busyDelta(-1);
  }
}

// Run an async function counted as busy (e.g. decoding after a request).
export async function busyWhile(fn) {
  busyDelta(+1);
  try {
    return await fn();
  } finally {
    busyDelta(-1);
  }
}

// ------------------------------------------------------------------ masks
function bytesToB64(bytes) {
  let out = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  }
  return btoa(out);
}

function b64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function pipe(bytes, stream) {
  const blob = new Blob([bytes]);
  const buf = await new Response(blob.stream().pipeThrough(stream)).arrayBuffer();
  return new Uint8Array(buf);
}

// A MaskPayload -> {shape, data: Uint8Array} (uint16 values above 255 are clipped to 255).
export async function decodeMask(payload) {
  let raw = b64ToBytes(payload.data);
  if (payload.encoding === "zlib-b64") raw = await pipe(raw, new DecompressionStream("deflate"));
  const n = payload.shape.reduce((a, b) => a * b, 1);
  let data;
  if (payload.dtype === "uint16") {
    data = new Uint8Array(n);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < n; i++) data[i] = Math.min(255, view.getUint16(2 * i, true));
  } else {
    data = raw.length === n ? raw : raw.slice(0, n);
  }
  return { shape: payload.shape.slice(), data };
}

// {shape, data: Uint8Array} -> MaskPayload (zlib-b64).
export async function encodeMask(shape, data) {
  const z = await pipe(data, new CompressionStream("deflate"));
  return { shape: shape.slice(), dtype: "uint8", encoding: "zlib-b64", data: bytesToB64(z) };
}

export function bytesToB64Plain(bytes) { return bytesToB64(bytes); }
export function b64ToBytesPlain(b64) { return b64ToBytes(b64); }
