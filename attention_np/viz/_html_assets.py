"""The CSS and JavaScript inlined into every interactive view (no CDN, works offline).

The page carries a JSON block ``#attn-data``: ``view`` ("head" or "model"), ``layers``, ``heads``,
``tq``, ``tk``, ``tokens_q``, ``tokens_k``, ``split`` (first token of sentence B or null),
``threshold``, ``scale`` and ``weights``: base64 of uint8 codes q = round(255·sqrt(w/scale)) in
(L, H, Tq, Tk) order, decoded as w = scale·(q/255)². The square root keeps small weights (1/512)
visible after quantisation. Opening the page with ``#selftest`` replays a hover and a click and
writes what happened into ``body[data-selftest]`` (the tests read it from the dumped DOM).
"""

CSS = r"""
body { font: 13px system-ui, sans-serif; color: #222; margin: 1em; }
h1 { font-size: 16px; margin: 0 0 .5em; } .controls { margin-bottom: .6em; }
.controls > * { margin-right: 1em; } .swatch { display: inline-block; width: 18px; height: 14px;
  margin-right: 3px; cursor: pointer; border: 2px solid transparent; vertical-align: middle; }
.swatch.off { opacity: .2; } .hv { display: flex; align-items: flex-start; }
.col { display: flex; flex-direction: column; } .tok { height: var(--rh); line-height: var(--rh);
  font-size: var(--fs); padding: 0 4px; white-space: nowrap; cursor: default; border-radius: 2px; }
.col.q .tok { text-align: right; } .tok.active { outline: 1px solid #333; font-weight: bold; }
.tok.sepB { border-top: 1px dashed #999; } .grid { border-collapse: collapse; }
.grid td, .grid th { padding: 2px; font-weight: normal; font-size: 11px; color: #555; }
.thumb { cursor: pointer; border: 1px solid #ccc; display: block; image-rendering: auto; }
.thumb.selected { border: 2px solid #d62728; } .mv { display: flex; gap: 1.5em; align-items: flex-start; }
.detail { position: sticky; top: 0; } #readout { font-family: monospace; white-space: pre;
  min-height: 7em; margin-top: .5em; } .hint { color: #777; }
"""

JS = r"""
(function () {
"use strict";
const D = JSON.parse(document.getElementById("attn-data").textContent);
const bin = atob(D.weights), Q = new Uint8Array(bin.length);
for (let n = 0; n < bin.length; n++) Q[n] = bin.charCodeAt(n);
const LUT = new Float32Array(256);
for (let k = 0; k < 256; k++) LUT[k] = D.scale * (k / 255) * (k / 255);
const base = (l, h) => (l * D.heads + h) * D.tq * D.tk;
const W = (l, h, i, j) => LUT[Q[base(l, h) + i * D.tk + j]];
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];
const color = h => COLORS[h % COLORS.length];
const $ = (tag, attrs, parent) => { const e = document.createElement(tag);
  Object.assign(e, attrs || {}); if (parent) parent.appendChild(e); return e; };
const root = document.getElementById("view");
const controls = $("div", {className: "controls"}, root);
const state = {layer: 0, pair: "all", heads: new Set([...Array(D.heads).keys()]), focus: null};

function ranges() {  // [row0, row1, col0, col1] of the sentence-pair block shown
  const s = D.split, all = [0, D.tq, 0, D.tk];
  if (s === null || state.pair === "all") return all;
  const A = [0, s], B = [s, D.tq];
  const pick = {AA: [A, A], AB: [A, B], BA: [B, A], BB: [B, B]}[state.pair];
  return [pick[0][0], pick[0][1], pick[1][0], pick[1][1]];
}
function select(label, options, onchange) {
  const lab = $("label", {textContent: label + " "}, controls);
  const sel = $("select", {id: label.toLowerCase().replace(/\W+/g, "-")}, lab);
  options.forEach(([value, text]) => $("option", {value: value, textContent: text}, sel));
  sel.addEventListener("change", () => onchange(sel.value)); return sel;
}
function pairControl(redraw) {
  if (D.split === null) return;
  select("Sentences", [["all", "all"], ["AA", "A → A"], ["AB", "A → B"], ["BA", "B → A"],
    ["BB", "B → B"]], v => { state.pair = v; redraw(); });
}

// ---------------------------------------------------------------- head view
function headView() {
  const rh = D.tq > 300 || D.tk > 300 ? 12 : 16;
  root.style.setProperty("--rh", rh + "px"); root.style.setProperty("--fs", (rh - 4) + "px");
  select("Layer", [...Array(D.layers).keys()].map(l => [l, String(D.layer_names[l])]),
    v => { state.layer = +v; draw(); });
  pairControl(() => draw());
  const sw = $("span", {}, controls); $("span", {textContent: "Heads: "}, sw);
  for (let h = 0; h < D.heads; h++) {
    const s = $("span", {className: "swatch", title: "head " + h + " (double-click: only this)"}, sw);
    s.style.background = color(h); s.dataset.head = h;
    s.addEventListener("click", () => { state.heads.has(h) ? state.heads.delete(h) : state.heads.add(h);
      s.classList.toggle("off", !state.heads.has(h)); draw(); });
    s.addEventListener("dblclick", () => { state.heads = new Set([h]);
      sw.querySelectorAll(".swatch").forEach(o => o.classList.toggle("off", +o.dataset.head !== h)); draw(); });
  }
  $("div", {className: "hint", textContent: "hover a token to see only its attention; " +
    "left = queries (attending), right = keys (attended to)"}, root);
  const hv = $("div", {className: "hv"}, root);
  const left = $("div", {className: "col q"}, hv);
  const canvas = $("canvas", {className: "lines"}, hv);
  const right = $("div", {className: "col k"}, hv);
  const width = 260, height = Math.max(D.tq, D.tk) * rh;
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext("2d");
  const mk = (col, toks, side) => toks.map((t, i) => {
    const e = $("div", {className: "tok", textContent: t}, col); e.dataset.i = i;
    if (D.split !== null && i === D.split) e.classList.add("sepB");
    e.addEventListener("mouseenter", () => { state.focus = [side, i]; draw(); });
    e.addEventListener("mouseleave", () => { state.focus = null; draw(); });
    return e; });
  const qs = mk(left, D.tokens_q, "q"), ks = mk(right, D.tokens_k, "k");

  function draw() {
    const [r0, r1, c0, c1] = ranges(), f = state.focus;
    ctx.clearRect(0, 0, width, height);
    let lines = 0;
    const mass = new Float32Array(f && f[0] === "k" ? D.tq : D.tk);
    for (const h of state.heads) {
      const buckets = Array.from({length: 17}, () => new Path2D());
      for (let i = r0; i < r1; i++) {
        if (f && f[0] === "q" && i !== f[1]) continue;
        for (let j = c0; j < c1; j++) {
          if (f && f[0] === "k" && j !== f[1]) continue;
          const v = W(state.layer, h, i, j);
          if (f) mass[f[0] === "q" ? j : i] += v / state.heads.size;
          if (v < (f ? 1e-3 : D.threshold)) continue;
          const b = Math.min(16, Math.ceil(v * 16));
          buckets[b].moveTo(0, (i + .5) * rh); buckets[b].lineTo(width, (j + .5) * rh); lines++;
        }
      }
      ctx.strokeStyle = color(h); ctx.lineWidth = f ? 2 : 1.5;
      buckets.forEach((p, b) => { if (b) { ctx.globalAlpha = b / 16; ctx.stroke(p); } });
    }
    ctx.globalAlpha = 1;
    qs.concat(ks).forEach(e => { e.classList.remove("active"); e.style.background = ""; });
    if (f) {
      (f[0] === "q" ? qs : ks)[f[1]].classList.add("active");
      (f[0] === "q" ? ks : qs).forEach((e, n) => {
        e.style.background = "rgba(31,119,180," + Math.min(1, mass[n]).toFixed(3) + ")"; });
    }
    document.body.dataset.lines = lines;
  }
  draw();
  return () => {
    const enter = new MouseEvent("mouseenter");
    qs[Math.min(1, D.tq - 1)].dispatchEvent(enter);
    const res = {hover_lines: +document.body.dataset.lines,
                 active: document.querySelectorAll(".tok.active").length,
                 shaded: ks.filter(e => e.style.background).length};
    qs[Math.min(1, D.tq - 1)].dispatchEvent(new MouseEvent("mouseleave"));
    res.lines = +document.body.dataset.lines; return res;
  };
}

// ---------------------------------------------------------------- model view
const RAMP = [[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
const PAL = new Uint8ClampedArray(256 * 3);
for (let k = 0; k < 256; k++) {  // the code k is sqrt(w): a perceptual ramp of sqrt-weights
  const x = k / 255 * (RAMP.length - 1), a = Math.min(Math.floor(x), RAMP.length - 2), t = x - a;
  for (let c = 0; c < 3; c++) PAL[3 * k + c] = RAMP[a][c] * (1 - t) + RAMP[a + 1][c] * t;
}
function heatCanvas(l, h, maxSide) {  // max-pooled when larger than maxSide: peaks stay visible
  const [r0, r1, c0, c1] = ranges(), tw = c1 - c0, th = r1 - r0;
  const ow = Math.min(tw, maxSide), oh = Math.min(th, maxSide), b = base(l, h);
  const pooled = new Uint8Array(ow * oh);
  for (let i = 0; i < th; i++) {
    const y = Math.floor(i * oh / th), row = b + (i + r0) * D.tk + c0;
    for (let j = 0; j < tw; j++) {
      const p = y * ow + Math.floor(j * ow / tw), k = Q[row + j];
      if (k > pooled[p]) pooled[p] = k;
    }
  }
  const off = document.createElement("canvas"); off.width = ow; off.height = oh;
  const octx = off.getContext("2d"), img = octx.createImageData(ow, oh);
  pooled.forEach((k, p) => { img.data.set([PAL[3 * k], PAL[3 * k + 1], PAL[3 * k + 2], 255], 4 * p); });
  octx.putImageData(img, 0, 0); return off;
}
function paint(canvas, src) {
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(src, 0, 0, canvas.width, canvas.height); return ctx;
}
function modelView() {
  pairControl(() => { drawThumbs(); showDetail(state.layer, state.head); });
  $("div", {className: "hint", textContent: "click a head to enlarge it; hover the enlarged " +
    "map to read a weight and the query's top keys (colour = sqrt of the weight)"}, root);
  const mv = $("div", {className: "mv"}, root);
  const table = $("table", {className: "grid"}, mv);
  const side = Math.max(48, Math.min(110, Math.floor(900 / D.heads)));
  const head = $("tr", {}, table); $("th", {}, head);
  for (let h = 0; h < D.heads; h++) $("th", {textContent: "head " + h}, head);
  const thumbs = [];
  for (let l = 0; l < D.layers; l++) {
    const tr = $("tr", {}, table); $("th", {textContent: String(D.layer_names[l])}, tr);
    for (let h = 0; h < D.heads; h++) {
      const c = $("canvas", {className: "thumb", title: D.layer_names[l] + ", head " + h}, $("td", {}, tr));
      c.width = side; c.height = side; c.dataset.layer = l; c.dataset.head = h;
      c.addEventListener("click", () => showDetail(l, h)); thumbs.push(c);
    }
  }
  const detail = $("div", {className: "detail"}, mv);
  const title = $("div", {}, detail);
  const big = $("canvas", {className: "big"}, detail);
  const readout = $("div", {id: "readout"}, detail);
  const size = Math.max(240, Math.min(640, 14 * Math.max(D.tq, D.tk)));
  big.width = size; big.height = size;
  let src = null;
  function drawThumbs() { thumbs.forEach(c => paint(c, heatCanvas(+c.dataset.layer, +c.dataset.head, side))); }
  function showDetail(l, h) {
    state.layer = l; state.head = h; src = heatCanvas(l, h, size); paint(big, src);
    thumbs.forEach(c => c.classList.toggle("selected", +c.dataset.layer === l && +c.dataset.head === h));
    title.textContent = D.layer_names[l] + ", head " + h + " — rows: queries, columns: keys";
  }
  big.addEventListener("mousemove", ev => {
    const [r0, r1, c0, c1] = ranges(), rect = big.getBoundingClientRect();
    const i = r0 + Math.min(r1 - r0 - 1, Math.floor((ev.clientY - rect.top) / rect.height * (r1 - r0)));
    const j = c0 + Math.min(c1 - c0 - 1, Math.floor((ev.clientX - rect.left) / rect.width * (c1 - c0)));
    const ctx = paint(big, src), rowH = big.height / (r1 - r0);
    ctx.strokeStyle = "#d62728"; ctx.strokeRect(0, (i - r0) * rowH, big.width, Math.max(rowH, 1));
    const top = [];
    for (let c = c0; c < c1; c++) top.push([W(state.layer, state.head, i, c), c]);
    top.sort((a, b) => b[0] - a[0]);
    readout.textContent = "query " + i + " '" + D.tokens_q[i] + "' → key " + j + " '" + D.tokens_k[j] +
      "': " + W(state.layer, state.head, i, j).toFixed(4) + "\ntop keys of this query:\n" +
      top.slice(0, 5).map(([v, c]) => "  " + v.toFixed(4) + "  " + c + " '" + D.tokens_k[c] + "'").join("\n");
  });
  drawThumbs(); showDetail(0, 0);
  return () => {
    thumbs[thumbs.length - 1].dispatchEvent(new MouseEvent("click"));
    const r = big.getBoundingClientRect();
    big.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2}));
    return {selected: document.querySelectorAll(".thumb.selected").length,
            thumbs: thumbs.length, readout: readout.textContent.split("\n")[0]};
  };
}

const selftest = D.view === "head" ? headView() : modelView();
if (location.hash === "#selftest") document.body.dataset.selftest = JSON.stringify(selftest());
document.body.dataset.ready = "1";
})();
"""
