// hrface page: send a photo to POST v1/detect and draw the JSON answer over it (plain JS, no build step).
// URLs are relative to the page, so it also works behind a reverse proxy under a path prefix.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const KEYPOINT_COLORS = ["#0050ff", "#e00000", "#ffe000", "#ff00ff", "#00e0e0"];
const AXIS_COLORS = ["#e00000", "#00c000", "#0050ff"];
const layers = { boxes: $("show-boxes"), keypoints: $("show-keypoints"), landmarks: $("show-landmarks"), pose: $("show-pose") };
let file = null; // the chosen File
let image = null; // its decoded ImageBitmap
let result = null; // the last JSON answer
let request = 0; // id of the newest request: older answers are ignored

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

// JSON with arrays of numbers on one line each, so 68 landmarks stay readable.
function pretty(value) {
  return JSON.stringify(value, null, 2).replace(/\[[\s\d.,eE+-]+\]/g, (m) =>
    "[" + m.slice(1, -1).trim().split(/\s*,\s*/).join(", ") + "]");
}

async function analyse() {
  if (!file) return;
  const id = ++request;
  canvas.dataset.state = "busy";
  setStatus(`Analysing ${file.name}…`);
  const form = new FormData();
  form.append("image", file, file.name);
  const url = `v1/detect?threshold=${encodeURIComponent($("threshold").value)}`;
  let answer;
  try {
    const response = await fetch(url, { method: "POST", body: form });
    answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  } catch (err) {
    if (id !== request) return;
    result = null;
    $("json").textContent = pretty(answer || { error: String(err.message || err) });
    canvas.dataset.state = "error";
    canvas.dataset.faces = "0";
    setStatus(`Error: ${err.message || err}`, true);
    draw();
    return;
  }
  if (id !== request) return;
  result = answer;
  $("json").textContent = pretty(answer);
  draw();
  const n = answer.faces.length;
  canvas.dataset.faces = String(n);
  canvas.dataset.state = "done";
  const capped = answer.capped || {};
  const score = capped.threshold ? capped.threshold.used : $("threshold").value;
  const best = capped.faces ? `, the best ${capped.faces.kept} of ${capped.faces.found}` : "";
  setStatus(`${n} face${n === 1 ? "" : "s"} in ${answer.width}×${answer.height} px (score ≥ ${score}${best}).`);
}

// Head axes (x right, y up, z towards the viewer) as 2-D image vectors: the columns of
// Rz(roll)·Ry(yaw)·Rx(-pitch) (hrface.geometry.pose), y flipped for the image; with their depth.
function poseAxes(pose) {
  const r = (d) => (d * Math.PI) / 180;
  const [cy, sy, cp, sp, cr, sr] = [Math.cos(r(pose.yaw)), Math.sin(r(pose.yaw)), Math.cos(r(-pose.pitch)),
    Math.sin(r(-pose.pitch)), Math.cos(r(pose.roll)), Math.sin(r(pose.roll))];
  const ry = [[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]];
  const rx = [[1, 0, 0], [0, cp, -sp], [0, sp, cp]];
  const rz = [[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]];
  const mul = (a, b) => a.map((row) => [0, 1, 2].map((j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
  const m = mul(mul(rz, ry), rx);
  return [0, 1, 2].map((j) => ({ dx: m[0][j], dy: -m[1][j], depth: m[2][j], color: AXIS_COLORS[j] }));
}

function dot(x, y, radius, color) {
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.fillStyle = color;
  ctx.fill();
}

function drawFace(face, sx, sy, unit) {
  const [x1, y1, x2, y2] = face.box;
  if (layers.boxes.checked) {
    ctx.strokeStyle = "#00ff00";
    ctx.lineWidth = 2 * unit;
    ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    ctx.font = `${Math.round(14 * unit)}px sans-serif`;
    const label = face.score.toFixed(2);
    const w = ctx.measureText(label).width + 6 * unit;
    ctx.fillStyle = "#00ff00";
    ctx.fillRect(x1 * sx, y1 * sy - 18 * unit, w, 18 * unit);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x1 * sx + 3 * unit, y1 * sy - 4 * unit);
  }
  if (layers.landmarks.checked && face.landmarks) {
    for (const [x, y] of face.landmarks) dot(x * sx, y * sy, 1.6 * unit, "#ff8c00");
  }
  if (layers.keypoints.checked) {
    face.keypoints.forEach(([x, y], i) => dot(x * sx, y * sy, 3 * unit, KEYPOINT_COLORS[i]));
  }
  if (layers.pose.checked && face.pose) {
    const [nx, ny] = face.keypoints[2];
    const length = 0.5 * (x2 - x1) * sx;
    ctx.lineWidth = 2.5 * unit;
    for (const axis of poseAxes(face.pose).sort((a, b) => a.depth - b.depth)) {
      ctx.strokeStyle = axis.color;
      ctx.beginPath();
      ctx.moveTo(nx * sx, ny * sy);
      ctx.lineTo(nx * sx + axis.dx * length, ny * sy + axis.dy * length);
      ctx.stroke();
    }
  }
}

function draw() {
  // Without a picture the browser can decode (PPM, TIFF), the faces are drawn on grey at the analysed size.
  const width = image ? image.width : result ? result.width : 0;
  const height = image ? image.height : result ? result.height : 0;
  if (!width || !height) return;
  canvas.width = width;
  canvas.height = height;
  if (image) ctx.drawImage(image, 0, 0);
  else { ctx.fillStyle = "#777"; ctx.fillRect(0, 0, width, height); }
  const faces = result ? result.faces : [];
  // The server reports the size it analysed (EXIF orientation applied, as the browser does); scale if it differs.
  const sx = result ? width / result.width : 1;
  const sy = result ? height / result.height : 1;
  const unit = Math.max(1, Math.max(width, height) / 800);
  faces.forEach((face) => drawFace(face, sx, sy, unit));
  canvas.setAttribute("aria-label", `${file.name}: ${faces.length} face${faces.length === 1 ? "" : "s"} drawn`);
}

async function choose(chosen) {
  if (!chosen) return;
  if (chosen.type && !chosen.type.startsWith("image/")) {
    setStatus(`${chosen.name} is not an image (${chosen.type}).`, true);
    return;
  }
  file = chosen;
  result = null;
  try {
    image = await createImageBitmap(chosen);
  } catch (err) {
    image = null; // the browser cannot show it; the server may still read it (its answer is shown)
  }
  draw();
  await analyse();
}

$("file").addEventListener("change", (event) => choose(event.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  choose(event.dataTransfer.files[0]);
});
Object.values(layers).forEach((box) => box.addEventListener("change", draw));
let pending = null;
$("threshold").addEventListener("input", () => {
  $("threshold-value").textContent = Number($("threshold").value).toFixed(2);
  clearTimeout(pending);
  pending = setTimeout(analyse, 250);
});

// Start the slider at the server's own threshold; it goes no lower than the server's minimum.
fetch("v1/models").then((r) => r.json()).then((info) => {
  const floor = info.limits && info.limits.min_threshold;
  if (typeof floor === "number" && floor > Number($("threshold").min)) $("threshold").min = String(floor);
  const t = info.loaded && info.loaded.detector && info.loaded.detector.threshold;
  if (typeof t === "number") {
    $("threshold").value = String(t);
    $("threshold-value").textContent = t.toFixed(2);
  }
}).catch(() => {});
