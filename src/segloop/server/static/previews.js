// Previews of the tool interactions drawn over the slice (box, clicks, scribbles, paths...).
import { interaction as s } from "./tools.js";
import { state } from "./viewer.js";

function line(ctx, toCanvas, pts, colour, width = 2, close = false) {
  if (!pts.length) return;
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.beginPath();
  pts.forEach(([y, x], i) => {
    const c = toCanvas(y, x);
    if (i) ctx.lineTo(c.x, c.y); else ctx.moveTo(c.x, c.y);
  });
  if (close) ctx.closePath();
  ctx.stroke();
}

function dots(ctx, toCanvas, pts, colour, r = 4) {
  ctx.fillStyle = colour;
  pts.forEach(([y, x]) => {
    const c = toCanvas(y, x);
    ctx.beginPath();
    ctx.arc(c.x, c.y, r, 0, 2 * Math.PI);
    ctx.fill();
  });
}

export function decorate(ctx, toCanvas, L) {
  const box = s.drag ? [s.drag.start, s.drag.end] : s.box;
  if (box && state.tool === "boxclicks") {
    line(ctx, toCanvas, [box[0], [box[0][0], box[1][1]], box[1], [box[1][0], box[0][1]]], "#0ff", 1.5, true);
    dots(ctx, toCanvas, s.pos, "#3f3");
    dots(ctx, toCanvas, s.neg, "#f33");
  }
  s.fg.forEach((st) => line(ctx, toCanvas, st, "#3f3", 3));
  s.bg.forEach((st) => line(ctx, toCanvas, st, "#f33", 3));
  if (s.stroke) line(ctx, toCanvas, s.stroke.points, s.stroke.neg ? "#f33" : "#3f3", 3);
  line(ctx, toCanvas, s.path, "#ff0", 2);
  line(ctx, toCanvas, s.preview, "#fa0", 1.5);
  dots(ctx, toCanvas, s.anchors, "#ff0", 3.5);
  if (state.tool === "geodesic" && s.anchors.length && s.mouse) {
    line(ctx, toCanvas, [...s.anchors, s.mouse], "#fa0", 1.5);
  }
  if (s.verts.length) {
    line(ctx, toCanvas, s.mouse ? [...s.verts, s.mouse] : s.verts, "#0ff", 1.5);
    dots(ctx, toCanvas, s.verts, "#0ff", 3);
  }
  if ((state.tool === "brush" || state.tool === "eraser") && s.mouse) {
    const r = parseInt(document.getElementById("brush-size").value, 10) || 1;
    const c = toCanvas(...s.mouse);
    ctx.strokeStyle = state.tool === "eraser" ? "#f88" : "#fff";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.ellipse(c.x, c.y, Math.max(1, (r - 0.5) * L.px), Math.max(1, (r - 0.5) * L.py), 0, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

