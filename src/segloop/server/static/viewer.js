// The slice view: image slice (PNG from the server, window/level), label overlay/outline,
// proposal and uncertainty layers, zoom/pan, and the canvas <-> voxel mapping.
import { api, busyWhile } from "./api.js";

export const state = {
  imageId: null, user: null, role: null, version: 0, shape: null, axis: 0, index: 0,
  tool: "boxclicks", busy: 0, dirty: false,
};

export const PALETTE = [
  [0, 0, 0], [255, 64, 64], [64, 200, 64], [64, 128, 255], [255, 200, 0], [220, 80, 255],
  [0, 220, 220], [255, 140, 0], [160, 255, 120], [255, 120, 180],
];
export const colour = (v) => PALETTE[v % PALETTE.length === 0 ? 1 : v % PALETTE.length];

export const WL_PRESETS = {
  "ct-soft-tissue": [400, 40], "ct-lung": [1500, -600], "ct-bone": [1800, 400],
};

export const view = {
  meta: null, label: null, proposal: null, uncertainty: null,
  bitmap: null, bitmapKey: null, zoom: 1, panX: 0, panY: 0,
  window: null, level: null, opacity: 0.45, outline: false,
  showProposal: false, showUncertainty: false, mouse: null,
  decorate: null, // tools draw their previews: (ctx, toCanvas, scale) => void
};

const canvas = () => document.getElementById("view");

// ------------------------------------------------------------------ geometry
export function is3D() { return !!state.shape && state.shape.length === 3; }

export function planeAxes(axis = state.axis) {
  if (!is3D()) return [0, 1];
  return [0, 1, 2].filter((a) => a !== axis);
}

export function planeShape(axis = state.axis) {
  if (!state.shape) return [1, 1];
  const [a, b] = planeAxes(axis);
  return [state.shape[a], state.shape[b]];
}

function strides() {
  const s = state.shape;
  return s.length === 3 ? [s[1] * s[2], s[2], 1] : [s[1], 1];
}

// Offsets into the label array of every pixel of slice (axis, index), row-major.
function planeOffset(axis, index) {
  const st = strides();
  if (!is3D()) return { base: 0, sa: st[0], sb: st[1] };
  const [a, b] = planeAxes(axis);
  return { base: index * st[axis], sa: st[a], sb: st[b] };
}

export function getPlane(vol = view.label, axis = state.axis, index = state.index) {
  const [h, w] = planeShape(axis);
  const out = new Uint8Array(h * w);
  if (!vol) return out;
  const { base, sa, sb } = planeOffset(axis, index);
  for (let i = 0; i < h; i++) {
    const row = base + i * sa;
    for (let j = 0; j < w; j++) out[i * w + j] = vol[row + j * sb];
  }
  return out;
}

export function setPlane(plane, axis = state.axis, index = state.index, vol = view.label) {
  const [h, w] = planeShape(axis);
  const { base, sa, sb } = planeOffset(axis, index);
  for (let i = 0; i < h; i++) {
    const row = base + i * sa;
    for (let j = 0; j < w; j++) vol[row + j * sb] = plane[i * w + j];
  }
}

export function sliceCount() { return is3D() ? state.shape[state.axis] : 1; }

function planeSpacing() {
  const sp = (view.meta && view.meta.spacing) || [1, 1, 1];
  const [a, b] = planeAxes();
  const sy = sp[a] > 0 ? sp[a] : 1;
  const sx = sp[b] > 0 ? sp[b] : 1;
  return [sy, sx];
}

// Canvas CSS pixels per voxel along y and x, and the top-left corner of the slice.
function layout() {
  const c = canvas();
  const cw = c.clientWidth, ch = c.clientHeight;
  const [h, w] = planeShape();
  const [sy, sx] = planeSpacing();
  const fit = Math.min(cw / (w * sx), ch / (h * sy));
  const py = fit * sy * view.zoom, px = fit * sx * view.zoom;
  const ox = (cw - w * px) / 2 + view.panX, oy = (ch - h * py) / 2 + view.panY;
  return { px, py, ox, oy, h, w, cw, ch };
}

// Centre of voxel (y, x) of the slice in canvas CSS pixels.
export function toCanvas(y, x) {
  const L = layout();
  return { x: L.ox + (x + 0.5) * L.px, y: L.oy + (y + 0.5) * L.py };
}

// Canvas CSS pixels -> [y, x] indices of the slice (may be outside).
export function toVoxel(cx, cy) {
  const L = layout();
  return [Math.floor((cy - L.oy) / L.py), Math.floor((cx - L.ox) / L.px)];
}

export function toVoxelFloat(cx, cy) {
  const L = layout();
  return [(cy - L.oy) / L.py - 0.5, (cx - L.ox) / L.px - 0.5];
}

export function inside(y, x) {
  const [h, w] = planeShape();
  return y >= 0 && x >= 0 && y < h && x < w;
}

// Full index (z, y, x) or (y, x) of slice pixel (y, x).
export function fullIndex(y, x) {
  if (!is3D()) return [y, x];
  const out = [0, 0, 0];
  const [a, b] = planeAxes();
  out[state.axis] = state.index;
  out[a] = y;
  out[b] = x;
  return out;
}

export function zoomAt(cx, cy, factor) {
  const before = toVoxelFloat(cx, cy);
  view.zoom = Math.min(40, Math.max(0.2, view.zoom * factor));
  const after = toCanvas(before[0], before[1]);
  view.panX += cx - after.x;
  view.panY += cy - after.y;
  render();
}

export function resetView() {
  view.zoom = 1;
  view.panX = 0;
  view.panY = 0;
}

// ------------------------------------------------------------------ image slices
let sliceRequest = null;

export function loadSlice() { return busyWhile(loadSliceNow); }

async function loadSliceNow() {
  if (!state.imageId) return;
  const q = new URLSearchParams();
  if (is3D()) {
    q.set("axis", state.axis);
    q.set("index", state.index);
  }
  if (view.window != null && view.level != null) {
    q.set("window", view.window.toPrecision(6));
    q.set("level", view.level.toPrecision(6));
  }
  const key = `${state.imageId}?${q}`;
  if (key === view.bitmapKey) return render();
  if (sliceRequest) sliceRequest.abort();
  const ctl = new AbortController();
  sliceRequest = ctl;
  try {
    const res = await api("GET", `/api/images/${encodeURIComponent(state.imageId)}/slice?${q}`,
      undefined, { raw: true, signal: ctl.signal });
    const blob = await res.blob();
    const bitmap = await createImageBitmap(blob);
    if (ctl.signal.aborted) return;
    view.bitmap = bitmap;
    view.bitmapKey = key;
    if (!view.window) {
      try { [view.lo, view.hi] = JSON.parse(res.headers.get("X-Window")); } catch (_) { /* */ }
    }
  } catch (err) {
    if (err.name !== "AbortError") view.bitmap = null;
  } finally {
    if (sliceRequest === ctl) sliceRequest = null;
  }
  render();
}

// ------------------------------------------------------------------ drawing
function layerCanvas(plane, h, w, paint) {
  const off = new OffscreenCanvas(w, h);
  const ctx = off.getContext("2d");
  const img = ctx.createImageData(w, h);
  paint(plane, img.data, h, w);
  ctx.putImageData(img, 0, 0);
  return off;
}

function paintLabel(outline, alpha, tint) {
  return (plane, px, h, w) => {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const k = i * w + j, v = plane[k];
        if (!v) continue;
        if (outline && i > 0 && j > 0 && i < h - 1 && j < w - 1 && plane[k - 1] === v &&
            plane[k + 1] === v && plane[k - w] === v && plane[k + w] === v) continue;
        const c = tint || colour(v);
        px[4 * k] = c[0]; px[4 * k + 1] = c[1]; px[4 * k + 2] = c[2];
        px[4 * k + 3] = outline ? 255 : alpha;
      }
    }
  };
}

function paintHeat(plane, px, h, w) {
  for (let k = 0; k < h * w; k++) {
    const v = plane[k];
    if (v < 8) continue;
    px[4 * k] = 255; px[4 * k + 1] = 255 - v; px[4 * k + 2] = 0; px[4 * k + 3] = Math.min(200, v);
  }
}

export function render() {
  const c = canvas();
  if (!c) return;
  const dpr = window.devicePixelRatio || 1;
  const W = Math.round(c.clientWidth * dpr), H = Math.round(c.clientHeight * dpr);
  if (c.width !== W || c.height !== H) { c.width = W; c.height = H; }
  const ctx = c.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, W, H);
  if (!state.shape) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const L = layout();
  ctx.imageSmoothingEnabled = false;
  if (view.bitmap) ctx.drawImage(view.bitmap, L.ox, L.oy, L.w * L.px, L.h * L.py);
  const draw = (vol, paint) => {
    if (!vol) return;
    const off = layerCanvas(getPlane(vol), L.h, L.w, paint);
    ctx.drawImage(off, L.ox, L.oy, L.w * L.px, L.h * L.py);
  };
  if (view.showUncertainty) draw(view.uncertainty, paintHeat);
  if (view.showProposal) draw(view.proposal, paintLabel(true, 255, [255, 255, 0]));
  if (view.opacity > 0 || view.outline) {
    ctx.globalAlpha = view.outline ? Math.max(0.35, view.opacity) : 1;
    draw(view.label, paintLabel(view.outline, Math.round(255 * view.opacity)));
    ctx.globalAlpha = 1;
  }
  if (view.decorate) view.decorate(ctx, toCanvas, L);
  const idx = document.getElementById("slice-index");
  if (idx) idx.textContent = `${state.index + 1} / ${sliceCount()}`;
}

// "voxel (z, y, x) · mm (…)" under the mouse.
export function crosshair(cx, cy) {
  const el = document.getElementById("crosshair");
  if (!el || !state.shape) return;
  const [y, x] = toVoxel(cx, cy);
  if (!inside(y, x)) { el.textContent = "voxel — · mm —"; return; }
  const idx = fullIndex(y, x);
  const m = view.meta || {};
  const sp = m.spacing || idx.map(() => 1), org = m.origin || idx.map(() => 0);
  const dir = m.direction || idx.map((_, i) => idx.map((__, j) => (i === j ? 1 : 0)));
  const mm = idx.map((_, i) => org[i] + idx.reduce((s, v, j) => s + dir[i][j] * v * sp[j], 0));
  const v = view.label ? view.label[idx.reduce((s, v2, i) => s + v2 * strides()[i], 0)] : 0;
  el.textContent = `voxel (${idx.join(", ")}) · mm (${mm.map((q) => q.toFixed(1)).join(", ")})`;
  el.title = `label ${v}`;
}
