// Tool interactions, merging of tool results into the label, undo/redo.
//
// Merge rules (current label value v, current slice):
// - boxclicks, graphcut, finetune refine one object: every answer replaces what the same
//   interaction drew, i.e. the slice as it was when the box / first scribble started, with the
//   tool's mask -> v on top (pixels of other values under the mask become v).
// - livewire, geodesic, polygon, regiongrow, brush add their mask -> v; eraser sets 0.
// - threshold replaces value v on the slice with its mask.
// - interpolate and islands edit the whole label (every slice) and replace it.
import { api, decodeMask, encodeMask, showMessage } from "./api.js";
import {
  getPlane, inside, is3D, planeShape, render, setPlane, state, view,
} from "./viewer.js";

export const TOOLS = ["boxclicks", "livewire", "geodesic", "graphcut", "finetune", "brush",
  "eraser", "polygon", "threshold", "regiongrow", "interpolate", "islands"];

export const edits = { undo: [], redo: [], tools: new Set(), interactions: 0, onChange: () => {} };
const MAX_UNDO = 50;

const labelValue = () => Math.max(1, parseInt(document.getElementById("label-value").value, 10) || 1);
const sliceRef = () => (is3D() ? { axis: state.axis, index: state.index } : null);

function changed(tool) {
  state.dirty = true;
  if (tool) edits.tools.add(tool);
  edits.interactions += 1;
  render();
  edits.onChange();
}

// Replace the current slice by `plane`, undoable.
export function commitPlane(plane, tool) {
  const before = getPlane();
  edits.undo.push({ axis: state.axis, index: state.index, before, after: plane });
  if (edits.undo.length > MAX_UNDO) edits.undo.shift();
  edits.redo.length = 0;
  setPlane(plane);
  changed(tool);
}

// Replace the whole label, undoable.
export function commitFull(data, tool) {
  edits.undo.push({ full: true, before: view.label.slice(), after: data });
  if (edits.undo.length > MAX_UNDO) edits.undo.shift();
  edits.redo.length = 0;
  view.label.set(data);
  changed(tool);
}

function replay(edit, which) {
  if (edit.full) view.label.set(edit[which]);
  else setPlane(edit[which], edit.axis, edit.index);
  state.dirty = true;
  render();
  edits.onChange();
}

export function undo() {
  cancel();
  const e = edits.undo.pop();
  if (!e) return;
  edits.redo.push(e);
  replay(e, "before");
}

export function redo() {
  cancel();
  const e = edits.redo.pop();
  if (!e) return;
  edits.undo.push(e);
  replay(e, "after");
}

export function clearHistory() {
  edits.undo.length = 0;
  edits.redo.length = 0;
  edits.tools.clear();
  edits.interactions = 0;
}

const same = (pts, p) => pts.length > 0 && pts[pts.length - 1][0] === p[0] && pts[pts.length - 1][1] === p[1];

function merge(base, mask, v) {
  const out = base.slice();
  for (let k = 0; k < out.length; k++) if (mask[k]) out[k] = v;
  return out;
}

async function applyTool(tool, params, extra = {}) {
  const body = { image_id: state.imageId, slice: extra.whole ? null : sliceRef(), params };
  if (extra.label) body.label = extra.label;
  const res = await api("POST", `/api/tools/${tool}/apply`, body);
  return (await decodeMask(res.mask)).data;
}

// ------------------------------------------------------------------ interaction state
const s = {
  drag: null, box: null, pos: [], neg: [], base: null, stroke: null, fg: [], bg: [],
  anchors: [], path: [], segs: [], preview: [], lw: null, verts: [], mouse: null, ftSession: null,
  painting: null,
};

export function cancel() {
  if (s.lw) api("DELETE", `/api/tools/livewire/sessions/${s.lw.id}`, undefined, { quiet: true })
    .catch(() => {});
  Object.assign(s, { drag: null, box: null, pos: [], neg: [], base: null, stroke: null, fg: [],
    bg: [], anchors: [], path: [], segs: [], preview: [], lw: null, verts: [], painting: null });
  if (s.ftSession) {
    api("DELETE", `/api/models/finetune/sessions/${s.ftSession}`, undefined, { quiet: true })
      .catch(() => {});
    s.ftSession = null;
  }
  render();
}

// ------------------------------------------------------------------ tools
async function runBoxclicks() {
  if (!s.box) return;
  const params = { box: s.box };
  if (s.pos.length) params.positive = s.pos;
  if (s.neg.length) params.negative = s.neg;
  const mask = await applyTool("boxclicks", params);
  commitPlane(merge(s.base, mask, labelValue()), "boxclicks");
}

async function runGraphcut() {
  if (!s.fg.length || !s.bg.length) {
    showMessage(s.fg.length ? "graphcut: now draw a background scribble (shift+drag)"
      : "graphcut: draw a foreground scribble (drag)", "info");
    return;
  }
  showMessage("");
  const mask = await applyTool("graphcut", { foreground: s.fg, background: s.bg });
  commitPlane(merge(s.base, mask, labelValue()), "graphcut");
}

// Scribble fine-tuning: the session starts with the model's mask; strokes wait until there is
// a background one (the cut needs both kinds), then go together.
async function runFinetune(fg, bg) {
  if (!s.ftSession) {
    const res = await api("POST", "/api/models/finetune/sessions",
      { image_id: state.imageId, slice: sliceRef(), label: 1 });
    s.ftSession = res.session_id;
    s.ftPending = { fg: [], bg: [], sentBg: false };
    const m = await decodeMask(res.mask);
    commitPlane(merge(s.base, m.data, labelValue()), "finetune");
  }
  const q = s.ftPending;
  q.fg.push(...fg);
  q.bg.push(...bg);
  if (!q.bg.length && !q.sentBg) {
    if (q.fg.length) showMessage("fine-tune: now a background scribble (shift+drag)", "info");
    return;
  }
  const res = await api("POST", `/api/models/finetune/sessions/${s.ftSession}/scribbles`,
    { foreground: q.fg, background: q.bg });
  q.sentBg = q.sentBg || q.bg.length > 0;
  q.fg = [];
  q.bg = [];
  showMessage("");
  const m = await decodeMask(res.mask);
  commitPlane(merge(s.base, m.data, labelValue()), "finetune");
}

async function livewireAnchor(p) {
  if (!s.lw) {
    const res = await api("POST", "/api/tools/livewire/sessions",
      { image_id: state.imageId, slice: sliceRef(), params: {} });
    s.lw = { id: res.session_id };
  }
  if (same(s.anchors, p)) return;
  s.anchors.push(p);
  const res = await api("POST", `/api/tools/livewire/sessions/${s.lw.id}/anchors`, { point: p });
  s.segs.push(res.path);
  s.path = s.segs.flat();
  s.preview = [];
  render();
}

let previewBusy = false;
async function livewirePreview(p) {
  if (!s.lw || !s.anchors.length || previewBusy) return;
  previewBusy = true;
  try {
    const res = await api("GET", `/api/tools/livewire/sessions/${s.lw.id}/preview?y=${p[0]}&x=${p[1]}`,
      undefined, { quiet: true });
    if (s.lw) s.preview = res.path;
    render();
  } catch (_) { /* a preview may fail quietly */ } finally { previewBusy = false; }
}

async function closeContour() {
  const v = labelValue();
  if (state.tool === "livewire") {
    if (!s.lw || s.anchors.length < 2) return;
    const res = await api("POST", `/api/tools/livewire/sessions/${s.lw.id}/close`);
    const m = await decodeMask(res.mask);
    cancel();
    commitPlane(merge(getPlane(), m.data, v), "livewire");
  } else if (state.tool === "geodesic") {
    if (s.anchors.length < 2) return;
    const anchors = s.anchors.slice();
    cancel();
    const mask = await applyTool("geodesic", { anchors, closed: anchors.length > 2 });
    commitPlane(merge(getPlane(), mask, v), "geodesic");
  } else if (state.tool === "polygon") {
    if (s.verts.length < 3) return;
    const verts = s.verts.slice();
    cancel();
    commitPlane(merge(getPlane(), fillPolygon(verts), v), "polygon");
  }
}

// Client-side polygon fill: pixels whose centre is inside the polygon (even-odd rule).
export function fillPolygon(verts) {
  const [h, w] = planeShape();
  const out = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    const xs = [];
    for (let i = 0; i < verts.length; i++) {
      const [y0, x0] = verts[i], [y1, x1] = verts[(i + 1) % verts.length];
      if ((y0 <= y && y1 > y) || (y1 <= y && y0 > y)) xs.push(x0 + ((y - y0) / (y1 - y0)) * (x1 - x0));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      for (let x = Math.max(0, Math.ceil(xs[k])); x <= Math.min(w - 1, Math.floor(xs[k + 1])); x++) {
        out[y * w + x] = 1;
      }
    }
  }
  verts.forEach(([y, x]) => { if (inside(y, x)) out[y * w + x] = 1; });
  return out;
}

function paintDisc(plane, p, r, v) {
  const [h, w] = planeShape();
  for (let y = Math.max(0, p[0] - r); y <= Math.min(h - 1, p[0] + r); y++) {
    for (let x = Math.max(0, p[1] - r); x <= Math.min(w - 1, p[1] + r); x++) {
      if ((y - p[0]) ** 2 + (x - p[1]) ** 2 <= r * r + 0.25) plane[y * w + x] = v;
    }
  }
}

function paintTo(p) {
  const r = Math.max(0, (parseInt(document.getElementById("brush-size").value, 10) || 1) - 1);
  const v = state.tool === "eraser" ? 0 : labelValue();
  const last = s.painting.last || p;
  const n = Math.max(1, Math.ceil(Math.hypot(p[0] - last[0], p[1] - last[1])));
  for (let i = 0; i <= n; i++) {
    const q = [Math.round(last[0] + ((p[0] - last[0]) * i) / n),
      Math.round(last[1] + ((p[1] - last[1]) * i) / n)];
    paintDisc(s.painting.plane, q, r, v);
  }
  s.painting.last = p;
  setPlane(s.painting.plane);
  render();
}

export async function applyButton() {
  const v = labelValue();
  if (state.tool === "threshold") {
    const num = (id) => {
      const t = document.getElementById(id).value.trim();
      if (!t) return undefined;
      return Number.isFinite(Number(t)) ? Number(t) : t;
    };
    const params = {};
    const lo = num("threshold-low"), hi = num("threshold-high");
    if (lo !== undefined) params.low = lo;
    if (hi !== undefined) params.high = hi;
    const mask = await applyTool("threshold", params);
    const base = getPlane().map((q) => (q === v ? 0 : q));
    commitPlane(merge(base, mask, v), "threshold");
  } else if (state.tool === "interpolate") {
    if (!is3D()) { showMessage("interpolate works on volumes: this image is 2D"); return; }
    const label = { source: "payload", payload: await encodeMask(state.shape, view.label) };
    const out = await applyTool("interpolate", { axis: state.axis }, { whole: true, label });
    commitFull(out, "interpolate");
  } else if (state.tool === "islands") {
    const op = document.getElementById("islands-op").value;
    const label = { source: "payload", payload: await encodeMask(state.shape, view.label) };
    const out = await applyTool("islands", { operation: op }, { whole: true, label });
    commitFull(out, "islands");
  } else if (["livewire", "geodesic", "polygon"].includes(state.tool)) {
    await closeContour();
  } else if (state.tool === "boxclicks") {
    await runBoxclicks();
  } else if (state.tool === "graphcut") {
    await runGraphcut();
  } else {
    showMessage(`${state.tool}: nothing to apply (use the mouse on the image)`, "info");
  }
}

// ------------------------------------------------------------------ pointer events
// `p`: [y, x] slice indices of the event; `e`: the mouse event (button, shiftKey).
export async function onDown(p, e) {
  if (!state.imageId || !view.label) return;
  const neg = e.shiftKey || e.button === 2;
  const t = state.tool;
  if (t === "boxclicks") {
    if (e.button === 2 && s.box && inside(...p)) {
      s.neg.push(p);
      render();
      await runBoxclicks();
    } else if (e.button === 0) {
      s.drag = { start: p, end: p, neg: e.shiftKey };
    }
  } else if ((t === "graphcut" || t === "finetune") && e.button === 0) {
    if (!s.base) s.base = getPlane();
    s.stroke = { neg, points: [p] };
  } else if ((t === "brush" || t === "eraser") && e.button === 0) {
    s.painting = { before: getPlane(), plane: getPlane(), last: null };
    paintTo(p);
  } else if ((t === "livewire" || t === "geodesic") && e.button === 0 && inside(...p)) {
    if (e.detail >= 2) return;
    if (t === "livewire") await livewireAnchor(p);
    else if (!same(s.anchors, p)) { s.anchors.push(p); render(); }
  } else if (t === "polygon" && e.button === 0 && inside(...p)) {
    if (e.detail >= 2) return;
    if (!same(s.verts, p)) s.verts.push(p);
    render();
  } else if (t === "regiongrow" && e.button === 0 && inside(...p)) {
    const mask = await applyTool("regiongrow", { seeds: [p] });
    commitPlane(merge(getPlane(), mask, labelValue()), "regiongrow");
  }
}

export function onMove(p) {
  s.mouse = p;
  if (s.drag) { s.drag.end = p; render(); return; }
  if (s.stroke) {
    const last = s.stroke.points[s.stroke.points.length - 1];
    if (last[0] !== p[0] || last[1] !== p[1]) s.stroke.points.push(p);
    render();
    return;
  }
  if (s.painting) { paintTo(p); return; }
  if (state.tool === "livewire" && s.lw && inside(...p)) livewirePreview(p);
  if (["geodesic", "polygon", "brush", "eraser"].includes(state.tool)) render();
}

const clampP = ([y, x]) => {
  const [h, w] = planeShape();
  return [Math.min(h - 1, Math.max(0, y)), Math.min(w - 1, Math.max(0, x))];
};

export async function onUp(p) {
  if (s.drag) {
    const a = clampP(s.drag.start), b = clampP(p), neg = s.drag.neg;
    s.drag = null;
    if (Math.abs(a[0] - b[0]) < 2 || Math.abs(a[1] - b[1]) < 2) {
      if (s.box && inside(...a)) {
        (neg ? s.neg : s.pos).push(a);
        render();
        await runBoxclicks();
      } else {
        if (!s.box) showMessage("boxclicks: drag a box around the object first", "info");
        render();
      }
      return;
    }
    s.box = [[Math.min(a[0], b[0]), Math.min(a[1], b[1])], [Math.max(a[0], b[0]), Math.max(a[1], b[1])]];
    s.pos = []; s.neg = []; s.base = getPlane();
    await runBoxclicks();
  } else if (s.stroke) {
    const stroke = s.stroke;
    s.stroke = null;
    const pts = stroke.points.filter((q) => inside(...q));
    if (!pts.length) { render(); return; }
    if (state.tool === "graphcut") {
      (stroke.neg ? s.bg : s.fg).push(pts);
      await runGraphcut();
    } else {
      (stroke.neg ? s.bg : s.fg).push(pts);
      await runFinetune(stroke.neg ? [] : pts, stroke.neg ? pts : []);
    }
  } else if (s.painting) {
    const { before, plane } = s.painting;
    s.painting = null;
    setPlane(before);
    commitPlane(plane, state.tool);
  }
}

export async function onDblClick() {
  if (["livewire", "geodesic", "polygon"].includes(state.tool)) await closeContour();
}

export function onEnter() { return closeContour(); }

// Backspace: remove the last anchor / vertex / click of the current interaction.
export async function removeLast() {
  if (state.tool === "livewire" && s.lw && s.anchors.length) {
    const res = await api("POST", `/api/tools/livewire/sessions/${s.lw.id}/undo`);
    s.anchors = res.anchors;
    s.segs.length = Math.min(s.segs.length, s.anchors.length);
    s.path = s.segs.flat();
    s.preview = [];
  } else if (state.tool === "geodesic") s.anchors.pop();
  else if (state.tool === "polygon") s.verts.pop();
  render();
}

export const interaction = s;
