// Wires the page: controls, mouse and keyboard on the canvas, shortcuts, help, test hooks.
import { busyWhile, net, showMessage } from "./api.js";
import { decorate } from "./previews.js";
import * as T from "./tools.js";
import {
  colour, crosshair, inside, is3D, loadSlice, render, resetView, sliceCount, state, toCanvas,
  toVoxel, view, WL_PRESETS, zoomAt,
} from "./viewer.js";
import * as W from "./workflow.js";

const $ = (id) => document.getElementById(id);
const canvas = $("view");
let resolveReady;
const ready = new Promise((r) => { resolveReady = r; });

window.segloop = {
  state, ready, toCanvas, toVoxel,
  label: () => (view.label ? { shape: state.shape.slice(), data: view.label.slice() } : null),
  open: (id) => W.openImage(id),
};

net.onBusy = (n) => { state.busy = n; document.body.classList.toggle("busy", n > 0); };
T.edits.onChange = () => { W.refreshStatus(); W.scheduleBackup(); };
view.decorate = decorate;

// Unhandled errors of event handlers: shown, never thrown at the console as uncaught.
// Every handler counts as busy until it is done (tests wait for state.busy === 0).
const safe = (fn) => (...args) => busyWhile(async () => {
  try { await fn(...args); } catch (err) {
    if (err && err.name !== "AbortError" && !("status" in err)) showMessage(String(err.message || err));
  }
});

const HINTS = {
  boxclicks: "Drag a box around the object, then click: left adds, shift+left or right removes.",
  livewire: "Click anchors along the boundary; double-click or Enter closes and fills.",
  geodesic: "Click anchors; double-click or Enter closes and fills.",
  graphcut: "Drag inside the object (foreground), shift+drag outside (background).",
  finetune: "Needs a model. Drag = foreground, shift+drag = background.",
  brush: "Drag to paint.", eraser: "Drag to erase.",
  polygon: "Click vertices; Enter or double-click closes.",
  threshold: "Levels (numbers or otsu, li, triangle...), then Apply: this slice.",
  regiongrow: "Click a seed.", interpolate: "Apply: fills the slices between drawn ones (volume).",
  islands: "Choose the operation, then Apply (whole label).",
};

function setTool(name) {
  if (!T.TOOLS.includes(name)) return;
  T.cancel();
  state.tool = name;
  document.body.dataset.tool = name;
  for (const b of document.querySelectorAll("button[data-tool]")) {
    b.classList.toggle("active", b.dataset.tool === name);
  }
  $("tool-hint").textContent = HINTS[name] || "";
  render();
}

function setSlice(index) {
  if (!is3D()) return;
  const n = sliceCount();
  const k = Math.max(0, Math.min(n - 1, index));
  if (k === state.index) return;
  T.cancel();
  state.index = k;
  loadSlice();
  render();
}

function setAxis(axis) {
  if (!is3D()) { $("axis").value = "0"; return; }
  T.cancel();
  state.axis = axis;
  state.index = Math.floor(state.shape[axis] / 2);
  resetView();
  loadSlice();
}

function defaultWL() {
  const it = (view.meta && view.meta.intensity) || { p1: 0, p99: 255 };
  return [Math.max(1e-6, it.p99 - it.p1), (it.p1 + it.p99) / 2];
}

function setPreset(name) {
  if (name === "auto") { view.window = null; view.level = null; }
  else if (name === "mri") {
    const it = (view.meta && view.meta.intensity) || { p1: 0, p99: 255 };
    const hi = it.p99 + 0.15 * (it.p99 - it.p1);
    view.window = Math.max(1e-6, hi - it.p1);
    view.level = (hi + it.p1) / 2;
  } else { [view.window, view.level] = WL_PRESETS[name]; }
  loadSlice();
}

// ------------------------------------------------------------------ controls
$("signin").addEventListener("click", safe(() => W.signIn($("token").value)));
$("token").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); $("signin").click(); } });
$("signout").addEventListener("click", () => W.signOut());
$("next-image").addEventListener("click", safe(W.nextImage));
$("save").addEventListener("click", safe(W.save));
$("undo").addEventListener("click", () => T.undo());
$("redo").addEventListener("click", () => T.redo());
$("apply").addEventListener("click", safe(T.applyButton));
$("preannotate").addEventListener("click", safe(W.preannotate));
$("conflict-reload").addEventListener("click", safe(W.conflictReload));
$("conflict-keep").addEventListener("click", safe(W.conflictKeep));
$("restore-backup").addEventListener("click", safe(W.restoreBackup));
$("discard-backup").addEventListener("click", () => W.discardBackup());
$("help-button").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
$("axis").addEventListener("change", (e) => setAxis(parseInt(e.target.value, 10)));
$("wl-preset").addEventListener("change", (e) => setPreset(e.target.value));
$("opacity").addEventListener("input", (e) => { view.opacity = e.target.value / 100; render(); });
$("outline").addEventListener("change", (e) => { view.outline = e.target.checked; render(); });
$("show-proposal").addEventListener("change", safe((e) => W.toggleProposal(e.target.checked)));
$("show-uncertainty").addEventListener("change", safe((e) => W.toggleUncertainty(e.target.checked)));
for (const b of document.querySelectorAll("button[data-tool]")) {
  b.addEventListener("click", () => setTool(b.dataset.tool));
}
for (let v = 1; v <= 9; v++) {
  const o = document.createElement("option");
  o.value = String(v);
  o.textContent = `label ${v} ●`;
  o.style.color = `rgb(${colour(v).join(",")})`;
  $("label-value").appendChild(o);
}
$("label-value").value = "1";

// ------------------------------------------------------------------ canvas
const pos = (e) => {
  const r = canvas.getBoundingClientRect();
  return [e.clientX - r.left, e.clientY - r.top];
};
let drag = null; // {kind: "pan" | "wl" | "tool", ...}
let spaceDown = false;

canvas.addEventListener("contextmenu", (e) => e.preventDefault());
canvas.addEventListener("mousedown", safe(async (e) => {
  canvas.focus();
  const [cx, cy] = pos(e);
  if (e.button === 1 || (e.button === 0 && spaceDown)) {
    e.preventDefault();
    drag = { kind: "pan", x: cx, y: cy, px: view.panX, py: view.panY };
  } else if (e.button === 2) {
    const [w, l] = view.window != null ? [view.window, view.level] : defaultWL();
    drag = { kind: "wl", x: cx, y: cy, w, l, moved: false, p: toVoxel(cx, cy), shift: e.shiftKey };
  } else if (e.button === 0) {
    drag = { kind: "tool" };
    await T.onDown(toVoxel(cx, cy), e);
  }
}));

window.addEventListener("mousemove", (e) => {
  const [cx, cy] = pos(e);
  if (drag && drag.kind === "pan") {
    view.panX = drag.px + cx - drag.x;
    view.panY = drag.py + cy - drag.y;
    render();
    return;
  }
  if (drag && drag.kind === "wl") {
    const dx = cx - drag.x, dy = cy - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    const it = (view.meta && view.meta.intensity) || { min: 0, max: 255 };
    const range = Math.max(1e-6, (it.max - it.min) || 255);
    view.window = Math.max(range / 1000, drag.w * Math.exp(dx / 200));
    view.level = drag.l - (dy * range) / 600;
    $("wl-preset").value = "auto";
    loadSlice();
    return;
  }
  if (e.target !== canvas && !drag) return;
  crosshair(cx, cy);
  T.onMove(toVoxel(cx, cy));
});

window.addEventListener("mouseup", safe(async (e) => {
  const d = drag;
  drag = null;
  if (!d) return;
  const [cx, cy] = pos(e);
  if (d.kind === "wl" && !d.moved) {
    if (state.tool === "boxclicks" && inside(...d.p)) await T.onDown(d.p, { button: 2, shiftKey: true });
  } else if (d.kind === "tool") {
    await T.onUp(toVoxel(cx, cy));
  }
}));

canvas.addEventListener("dblclick", safe(() => T.onDblClick()));
canvas.addEventListener("wheel", (e) => {
  e.preventDefault();
  const [cx, cy] = pos(e);
  if (e.ctrlKey || e.metaKey) zoomAt(cx, cy, e.deltaY < 0 ? 1.15 : 1 / 1.15);
  else if (e.deltaY) setSlice(state.index + (e.deltaY > 0 ? 1 : -1));
}, { passive: false });
window.addEventListener("resize", () => render());

// ------------------------------------------------------------------ keyboard
const KEYS = { b: "boxclicks", l: "livewire", g: "geodesic", c: "graphcut", f: "finetune",
  p: "brush", e: "eraser", o: "polygon", t: "threshold", r: "regiongrow", i: "interpolate",
  k: "islands" };

document.addEventListener("keydown", safe(async (e) => {
  const typing = e.target.matches && e.target.matches("input[type=text], input[type=password], input[type=number], textarea");
  const ctrl = e.ctrlKey || e.metaKey;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (ctrl && key === "s") { e.preventDefault(); await W.save(); return; }
  if (typing) return;
  if (ctrl && (key === "y" || (key === "z" && e.shiftKey))) { e.preventDefault(); T.redo(); return; }
  if (ctrl && key === "z") { e.preventDefault(); T.undo(); return; }
  if (ctrl || e.altKey) return;
  if (e.key === " ") { spaceDown = true; e.preventDefault(); return; }
  if (e.key === "?") { $("help").hidden = !$("help").hidden; return; }
  if (e.key === "Escape") {
    if (!$("help").hidden) $("help").hidden = true;
    T.cancel();
    return;
  }
  if (e.key === "ArrowUp" || e.key === "PageUp") { e.preventDefault(); setSlice(state.index - (e.key === "PageUp" ? 10 : 1)); return; }
  if (e.key === "ArrowDown" || e.key === "PageDown") { e.preventDefault(); setSlice(state.index + (e.key === "PageDown" ? 10 : 1)); return; }
  if (e.key === "Enter") { if (e.target.tagName !== "BUTTON") { e.preventDefault(); await T.onEnter(); } return; }
  if (e.key === "Backspace") { await T.removeLast(); return; }
  if (e.target.tagName === "SELECT") return;
  if (KEYS[key]) { setTool(KEYS[key]); return; }
  if (key === "n") { await W.nextImage(); return; }
  if (key === "0") { resetView(); render(); return; }
  if (/^[1-9]$/.test(key)) { $("label-value").value = key; }
}));
document.addEventListener("keyup", (e) => { if (e.key === " ") spaceDown = false; });
window.addEventListener("beforeunload", () => { W.backupNow(); });

// ------------------------------------------------------------------ start
async function init() {
  setTool("boxclicks");
  $("token").value = net.token;
  render();
  if (net.token) await W.signIn();
  else showMessage("sign in with your token (segloop users add NAME ... prints it)", "info");
}

init().catch((err) => showMessage(String(err.message || err))).finally(() => resolveReady());
