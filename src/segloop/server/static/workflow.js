// Sign-in, the image list, opening images, save (409 dialog), versions, the model, jobs,
// and the localStorage backup of unsaved work.
import {
  api, b64ToBytesPlain, busyWhile, bytesToB64Plain, decodeMask, encodeMask, net, setToken, showMessage,
} from "./api.js";
import { cancel, clearHistory, commitFull, edits } from "./tools.js";
import { loadSlice, render, resetView, state, view } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;
let openedAt = Date.now();

const report = (err) => { if (!(err && "status" in err)) showMessage(String((err && err.message) || err)); };

export function setStatus(text) { $("status").textContent = text; }

function statusText() {
  if (!state.imageId) return "no image";
  return state.dirty ? "unsaved changes" : state.version ? `saved v${state.version}` : "not saved yet";
}
export function refreshStatus() { setStatus(statusText()); }

// ------------------------------------------------------------------ sign-in
export async function signIn(token) {
  if (token !== undefined) setToken(token.trim());
  if (!net.token) { showMessage("enter your token to sign in", "info"); return false; }
  try {
    const info = await api("GET", "/api/info");
    state.user = info.user;
    state.role = info.role;
    view.info = info;
    $("who").textContent = `${info.user} (${info.role}) · ${info.images} images`;
    document.body.classList.add("signed-in");
    showMessage("");
    await loadImages();
    if (info.role === "admin") pollJobs();
    return true;
  } catch (err) {
    document.body.classList.remove("signed-in");
    state.user = null;
    return false;
  }
}

export function signOut() {
  setToken("");
  state.user = null;
  document.body.classList.remove("signed-in");
  $("images").innerHTML = "";
}

// ------------------------------------------------------------------ images
export async function loadImages() {
  const list = await api("GET", "/api/images");
  const ul = $("images");
  ul.innerHTML = "";
  for (const im of list) {
    const li = document.createElement("li");
    li.dataset.imageId = im.id;
    li.tabIndex = 0;
    li.textContent = `${im.id} ${im.my_version ? `v${im.my_version}` : "—"}`;
    li.title = im.error || `${im.shape.join("×")} · ${im.contrast || ""}`;
    if (im.error) li.classList.add("broken");
    if (im.id === state.imageId) li.classList.add("current");
    li.addEventListener("click", () => openImage(im.id).catch(report));
    ul.appendChild(li);
  }
}

function markList() {
  for (const li of $("images").querySelectorAll("li")) {
    li.classList.toggle("current", li.dataset.imageId === state.imageId);
    if (li.dataset.imageId === state.imageId) {
      li.textContent = `${state.imageId} ${state.version ? `v${state.version}` : "—"}`;
    }
  }
}

export async function nextImage() {
  const res = await api("GET", "/api/active/next");
  if (!res.image_id) { showMessage(`you labelled every image (${res.total})`, "info"); return; }
  await openImage(res.image_id);
}

export function openImage(id) { return busyWhile(() => openImageNow(id)); }

async function openImageNow(id) {
  if (state.dirty && state.imageId && state.imageId !== id) backupNow();
  cancel();
  const meta = await api("GET", `/api/images/${enc(id)}`);
  const shape = meta.shape.slice(0, meta.ndim);
  let version = 0, data = new Uint8Array(shape.reduce((a, b) => a * b, 1));
  if (meta.my_version) {
    const lab = await api("GET", `/api/labels/${enc(id)}/${enc(state.user)}`);
    version = lab.version;
    data = (await decodeMask(lab.mask)).data;
  }
  const same = id === state.imageId && state.shape && state.shape.join() === shape.join();
  const keep = same ? { axis: state.axis, index: state.index, zoom: view.zoom, panX: view.panX,
    panY: view.panY, window: view.window, level: view.level, wl: $("wl-preset").value } : null;
  view.meta = meta;
  view.label = data;
  view.proposal = null;
  view.uncertainty = null;
  view.window = null;
  view.level = null;
  view.bitmapKey = null;
  $("wl-preset").value = "auto";
  $("show-proposal").checked = false;
  $("show-uncertainty").checked = false;
  view.showProposal = view.showUncertainty = false;
  Object.assign(state, { imageId: id, version, shape, axis: 0, dirty: false });
  state.index = shape.length === 3 ? Math.floor(shape[0] / 2) : 0;
  $("axis").value = "0";
  $("axis").disabled = shape.length !== 3;
  document.body.classList.toggle("volume", shape.length === 3);
  clearHistory();
  resetView();
  if (keep) {
    Object.assign(view, { zoom: keep.zoom, panX: keep.panX, panY: keep.panY, window: keep.window,
      level: keep.level });
    state.axis = keep.axis;
    state.index = keep.index;
    $("axis").value = String(keep.axis);
    $("wl-preset").value = keep.wl;
  }
  openedAt = Date.now();
  refreshStatus();
  markList();
  offerBackup();
  await Promise.all([loadSlice(), loadVersions()]);
  render();
}

// ------------------------------------------------------------------ save / 409
async function putLabel(base) {
  const body = {
    base_version: base, mask: await encodeMask(state.shape, view.label),
    tools: [...edits.tools].slice(0, 64), interactions: edits.interactions,
    seconds: Math.round((Date.now() - openedAt) / 100) / 10,
  };
  return api("PUT", `/api/labels/${enc(state.imageId)}/${enc(state.user)}`, body,
    { quietStatus: [409] });
}

export async function save() {
  if (!state.imageId) return;
  try {
    const row = await putLabel(state.version);
    saved(row.version);
  } catch (err) {
    if (err.status === 409) openConflict(err.message);
  }
}

function saved(version) {
  state.version = version;
  state.dirty = false;
  edits.tools.clear();
  edits.interactions = 0;
  openedAt = Date.now();
  dropBackup();
  refreshStatus();
  markList();
  loadVersions();
  showMessage("");
}

function openConflict(message) {
  $("conflict-text").textContent = `${message}. Reload the latest version (your changes are ` +
    "lost) or keep yours (saved on top of the latest version)?";
  const dlg = $("conflict");
  if (!dlg.open) dlg.showModal();
}

export async function conflictReload() {
  $("conflict").close();
  state.dirty = false;
  dropBackup();
  await openImage(state.imageId);
}

export async function conflictKeep() {
  $("conflict").close();
  const r = await api("GET", `/api/labels/${enc(state.imageId)}`);
  const latest = r.raters[state.user] || 0;
  try {
    const row = await putLabel(latest);
    saved(row.version);
  } catch (err) {
    if (err.status === 409) openConflict(err.message);
  }
}

// ------------------------------------------------------------------ versions
export async function loadVersions() {
  const ul = $("versions");
  ul.innerHTML = "";
  if (!state.imageId) return;
  const rows = await api("GET", `/api/labels/${enc(state.imageId)}/${enc(state.user)}/versions`);
  for (const r of rows.slice().reverse()) {
    const li = document.createElement("li");
    li.dataset.version = r.version;
    const when = (r.created_at || "").replace("T", " ").slice(0, 19);
    li.textContent = `v${r.version} · ${r.action}${r.tools.length ? ` (${r.tools.join(", ")})` : ""} · ${when} `;
    const b = document.createElement("button");
    b.dataset.revert = r.version;
    b.textContent = "revert";
    b.disabled = r.version === state.version;
    b.addEventListener("click", () => revert(r.version).catch(report));
    li.appendChild(b);
    ul.appendChild(li);
  }
}

export function revert(v) { return busyWhile(() => revertNow(v)); }

async function revertNow(v) {
  try {
    await api("POST", `/api/labels/${enc(state.imageId)}/${enc(state.user)}/revert`,
      { to_version: v, base_version: state.version }, { quietStatus: [409] });
  } catch (err) {
    if (err.status === 409) { openConflict(err.message); return; }
    throw err;
  }
  state.dirty = false;
  dropBackup();
  await openImage(state.imageId);
}

// ------------------------------------------------------------------ the model
async function modelLoaded() {
  const m = await api("GET", "/api/models");
  if (!m.loaded) showMessage("no model is loaded on the server (segloop serve --model CKPT)", "info");
  return m.loaded;
}

export async function preannotate() {
  if (!state.imageId || !(await modelLoaded())) return;
  const res = await api("POST", "/api/models/preannotate", { image_id: state.imageId });
  const m = await decodeMask(res.mask);
  view.proposal = m.data;
  commitFull(m.data, "model");
  showMessage(`model proposal loaded as the label (${res.seconds.toFixed(1)} s); save to keep it`, "info");
}

export async function toggleProposal(on) {
  view.showProposal = on;
  if (on && !view.proposal && state.imageId) {
    if (!(await modelLoaded())) { $("show-proposal").checked = false; view.showProposal = false; return; }
    const res = await api("POST", "/api/models/preannotate", { image_id: state.imageId });
    view.proposal = (await decodeMask(res.mask)).data;
  }
  render();
}

export async function toggleUncertainty(on) {
  view.showUncertainty = on;
  if (on && !view.uncertainty && state.imageId) {
    if (!(await modelLoaded())) { $("show-uncertainty").checked = false; view.showUncertainty = false; return; }
    const res = await api("POST", "/api/models/uncertainty", { image_id: state.imageId });
    view.uncertainty = (await decodeMask(res.map)).data;
    showMessage(`uncertainty score ${res.score.toFixed(3)} (${res.method})`, "info");
  }
  render();
}

// ------------------------------------------------------------------ jobs (admins)
let jobTimer = null;
export function pollJobs() {
  clearTimeout(jobTimer);
  const tick = async () => {
    if (state.role !== "admin") return;
    try {
      const jobs = await api("GET", "/api/jobs", undefined, { quiet: true });
      let live = jobs.filter((j) => j.status === "running" || j.status === "queued");
      if (!live.length && jobs.length) {
        live = [jobs.reduce((a, j) => (j.created_at > a.created_at ? j : a))]; // the last one
      }
      const el = $("job");
      el.hidden = !live.length;
      el.innerHTML = "";
      for (const j of live) {
        const div = document.createElement("div");
        div.textContent = `job ${j.kind} ${j.status} ${Math.round(100 * j.progress)}% ${j.message || ""}`;
        const bar = document.createElement("progress");
        bar.max = 1;
        bar.value = j.progress;
        div.appendChild(bar);
        el.appendChild(div);
      }
    } catch (_) { /* try again later */ }
    jobTimer = setTimeout(tick, live_interval());
  };
  tick();
}
const live_interval = () => (/running|queued/.test($("job").textContent) ? 1000 : 2500);

// ------------------------------------------------------------------ localStorage backup
const backupKey = () => `segloop.backup.${state.user}.${state.imageId}`;

export async function backupNow() {
  if (!state.imageId || !state.dirty) return;
  try {
    const p = await encodeMask(state.shape, view.label);
    localStorage.setItem(backupKey(), JSON.stringify({ version: state.version, saved_at: Date.now(), mask: p }));
  } catch (_) { /* storage full: nothing to do */ }
}

let backupTimer = null;
export function scheduleBackup() {
  clearTimeout(backupTimer);
  backupTimer = setTimeout(backupNow, 800);
}

function dropBackup() {
  clearTimeout(backupTimer);
  if (state.imageId) localStorage.removeItem(backupKey());
  $("backup").hidden = true;
}

function offerBackup() {
  const raw = localStorage.getItem(backupKey());
  const el = $("backup");
  el.hidden = !raw;
  if (!raw) return;
  const b = JSON.parse(raw);
  $("backup-text").textContent = `Unsaved work on this image from ${new Date(b.saved_at).toLocaleString()} ` +
    `(based on v${b.version}).`;
}

export async function restoreBackup() {
  const raw = localStorage.getItem(backupKey());
  $("backup").hidden = true;
  if (!raw) return;
  const b = JSON.parse(raw);
  const m = await decodeMask(b.mask);
  if (m.data.length !== view.label.length) { showMessage("the backup does not fit this image"); return; }
  commitFull(m.data, "restore");
}

export function discardBackup() { dropBackup(); }
export { b64ToBytesPlain, bytesToB64Plain };
