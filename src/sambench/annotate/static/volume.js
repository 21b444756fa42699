// sambench annotate-volume: the page. Talks to the session's HTTP API (volume_server.py); no external assets.
"use strict";
(() => {
  const tab = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
  const token = document.querySelector("meta[name=sambench-token]").content;
  const auth = {"X-Sambench-Tab": tab, "X-Sambench-Token": token};
  const $ = (id) => document.getElementById(id);
  const canvas = $("view");
  const ctx = canvas.getContext("2d");
  const off = document.createElement("canvas");  // the slice at native size, windowed + overlay
  const offctx = off.getContext("2d");
  let st = null;            // the server's state
  let sl = null;            // {view, k, rows, cols, img: Float32Array, lab: Uint8Array, ready}
  let view = "axial";
  const ks = {};            // slice index per view
  let level = 0, width = 1;
  let zoom = 1, panX = 0, panY = 0;  // display transform: screen = base + zoom * image (+ pan)
  let drag = null, polygon = [], busy = false;
  let lasso = [];           // lasso corners clicked one by one (a dragged lasso goes at once)
  let sent = null;          // the last scribble/lasso sent: drawn on its slice until the next action
  const colours = {};

  function setBusy(b) { busy = b; document.body.dataset.busy = b ? "1" : "0"; }

  async function api(method, path, body) {
    const opts = {method, headers: {...auth}};
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const r = await fetch(path, opts);
    const data = await r.json().catch(() => ({error: r.statusText}));
    if (r.status === 409 && /another browser tab/.test(data.error || "")) { fatal(data.error); throw new Error(data.error); }
    if (!r.ok) throw new Error(data.error || r.statusText);
    return data;
  }

  function fatal(text) {
    $("main").hidden = true;
    $("message").textContent = text; $("message").hidden = false;
    document.body.dataset.state = "refused";
  }

  const tool = () => document.querySelector("input[name=tool]:checked").value;
  const geom = () => st.views[view];

  function hexRgb(h) { return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)); }

  async function loadSlice() {
    const g = geom();
    const k = ks[view];
    const r = await fetch(`/api/slice?view=${view}&k=${k}`, {headers: auth});
    if (!r.ok) { const d = await r.json().catch(() => ({})); throw new Error(d.error || r.statusText); }
    const buf = await r.arrayBuffer();
    const n = g.rows * g.cols;
    sl = {view, k, rows: g.rows, cols: g.cols, img: new Float32Array(buf, 0, n),
          lab: new Uint8Array(buf, 4 * n, n), ready: r.headers.get("X-Embedding-Ready") === "1"};
    document.body.dataset.slice = `${view}:${k}`;
    document.body.dataset.sliceLabelled = String(sl.lab.reduce((a, v) => a + (v === st.active ? 1 : 0), 0));
    render();
  }

  function render() {
    if (!sl) return;
    off.width = sl.cols; off.height = sl.rows;
    const d = offctx.createImageData(sl.cols, sl.rows);
    const lo = level - width / 2, a = Number($("opacity").value) / 100;
    for (let i = 0; i < sl.img.length; i++) {
      let v = 255 * (sl.img[i] - lo) / width;
      v = v < 0 ? 0 : v > 255 ? 255 : v;
      let r = v, g = v, b = v;
      const lab = sl.lab[i];
      if (lab && colours[lab]) {
        const c = colours[lab];
        r = (1 - a) * v + a * c[0]; g = (1 - a) * v + a * c[1]; b = (1 - a) * v + a * c[2];
      }
      d.data[4 * i] = r; d.data[4 * i + 1] = g; d.data[4 * i + 2] = b; d.data[4 * i + 3] = 255;
    }
    offctx.putImageData(d, 0, 0);
    draw();
  }

  // image pixel -> screen: x_s = ox + sx * x, y_s = oy + sy * y (pixel aspect from the spacing)
  function transform() {
    const g = geom();
    const [rmm, cmm] = g.pixel_mm;
    const w = g.cols * cmm, h = g.rows * rmm;  // mm
    const base = Math.min(canvas.width / w, canvas.height / h);
    const sx = base * cmm * zoom, sy = base * rmm * zoom;
    const ox = (canvas.width - g.cols * sx) / 2 + panX, oy = (canvas.height - g.rows * sy) / 2 + panY;
    return {sx, sy, ox, oy};
  }

  function draw() {
    if (!sl) return;
    const t = transform();
    document.body.dataset.transform = JSON.stringify(t);  // image pixel -> canvas (for tests)
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = false;
    ctx.setTransform(t.sx, 0, 0, t.sy, t.ox, t.oy);
    ctx.drawImage(off, 0, 0);
    const lw = 1 / Math.min(t.sx, t.sy);
    ctx.lineWidth = 1.5 * lw;
    if (drag && drag.kind === "box" && drag.points.length > 1) {
      const [p, q] = [drag.points[0], drag.points[drag.points.length - 1]];
      ctx.strokeStyle = "#4caf50"; ctx.setLineDash([4 * lw, 3 * lw]);
      ctx.strokeRect(Math.min(p[0], q[0]), Math.min(p[1], q[1]), Math.abs(q[0] - p[0]) + 1, Math.abs(q[1] - p[1]) + 1);
      ctx.setLineDash([]);
    }
    if (drag && (drag.kind === "brush" || drag.kind === "erase")) {
      ctx.strokeStyle = drag.kind === "brush" ? "rgba(245,197,66,.8)" : "rgba(229,57,53,.8)";
      ctx.lineWidth = 2 * Number($("radius").value) + 1; ctx.lineCap = "round"; ctx.lineJoin = "round";
      ctx.beginPath();
      drag.points.forEach(([x, y], i) => (i ? ctx.lineTo(x + .5, y + .5) : ctx.moveTo(x + .5, y + .5)));
      if (drag.points.length === 1) ctx.lineTo(drag.points[0][0] + .5, drag.points[0][1] + .5);
      ctx.stroke();
    }
    if (polygon.length) {
      ctx.strokeStyle = "#00bcd4"; ctx.beginPath();
      polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x + .5, y + .5) : ctx.moveTo(x + .5, y + .5)));
      ctx.stroke();
    }
    // a scribble or lasso being drawn (solid) or the last one sent, on its slice (dashed):
    // green adds to the object, red removes
    const prompt = drag && (drag.kind === "scribble" || drag.kind === "lasso") ? drag
      : lasso.length ? {kind: "lasso", points: lasso, negative: negative(null)}
      : sent && sent.view === sl.view && sent.k === sl.k ? {...sent, dashed: true} : null;
    if (prompt) {
      const col = prompt.negative ? [229, 57, 53] : [76, 175, 80];
      ctx.strokeStyle = `rgb(${col})`; ctx.lineCap = "round"; ctx.lineJoin = "round";
      ctx.lineWidth = 2 * lw;
      if (prompt.dashed) ctx.setLineDash([4 * lw, 3 * lw]);
      ctx.beginPath();
      prompt.points.forEach(([x, y], i) => (i ? ctx.lineTo(x + .5, y + .5) : ctx.moveTo(x + .5, y + .5)));
      if (prompt.points.length === 1) ctx.lineTo(prompt.points[0][0] + .5, prompt.points[0][1] + .5);
      if (prompt.kind === "lasso") {
        ctx.closePath();
        if (!prompt.dashed) { ctx.fillStyle = `rgba(${col},.25)`; ctx.fill(); }
      }
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#9aa0a6"; ctx.font = "12px system-ui";
    ctx.fillText(`${view} ${sl.k + 1}/${geom().depth}  L ${fmt(level)} W ${fmt(width)}  zoom ${zoom.toFixed(2)}`, 6, canvas.height - 8);
  }

  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));

  function setWindow(l, w) {
    level = l; width = Math.max(w, 1e-3);
    $("level").value = fmt(level); $("width").value = fmt(width);
    document.body.dataset.window = `${level}/${width}`;
    render();
  }

  function applyPreset() {
    const p = $("preset").value;
    if (p === "auto") { const [lo, hi] = st.auto_window; setWindow((lo + hi) / 2, hi - lo || 1); }
    else if (p === "full") { const [lo, hi] = st.range; setWindow((lo + hi) / 2, hi - lo || 1); }
    else { const [l, w] = p.split(",").map(Number); setWindow(l, w); }
  }

  function showState(s) {
    const first = !st || st.item_id !== s.item_id;
    st = s;
    $("who").textContent = `${s.annotator} · ${s.mode === "model" ? "with " + s.model : "manual"}`;
    $("item").textContent = `${s.item_id}${s.modality ? " · " + s.modality : ""}`;
    const acc = s.items.filter((i) => i.accepted).length;
    $("progress").textContent = `${acc} / ${s.items.length} volumes accepted`;
    document.body.classList.toggle("manual", s.mode === "manual");
    document.body.classList.toggle("native3d", s.model_kind === "3d");  // no propagation: 3D masks
    // scribble and lasso: only for a native 3D model whose weights take them
    const prompts = s.native_prompts || [];
    document.body.classList.toggle("can-scribble", prompts.includes("scribble"));
    document.body.classList.toggle("can-lasso", prompts.includes("lasso"));
    document.body.dataset.item = s.item_id;
    document.body.dataset.accepted = String(acc);
    document.body.dataset.voxels = JSON.stringify(s.voxels);
    for (const l of s.labels) colours[l.value] = hexRgb(l.colour);
    $("labels").replaceChildren(...s.labels.map((l) => {
      const li = document.createElement("li");
      const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = l.colour;
      const nm = document.createElement("span"); nm.textContent = `${l.value} ${l.name}`;
      const vx = document.createElement("span"); vx.className = "vox"; vx.textContent = `${s.voxels[l.value] || 0} vox`;
      li.append(sw, nm, vx);
      li.dataset.value = l.value;
      if (l.value === s.active) li.classList.add("active");
      li.addEventListener("click", () => act("/api/select", {value: l.value}));
      return li;
    }));
    $("overlap").value = s.overlap;
    $("items").replaceChildren(...s.items.map((i) => {
      const o = document.createElement("option");
      o.value = i.item_id; o.textContent = i.item_id + (i.accepted ? " (accepted)" : "");
      return o;
    }));
    $("items").value = s.item_id;
    if (first) {
      for (const v of ["axial", "coronal", "sagittal"]) ks[v] = Math.floor(s.views[v].depth / 2);
      zoom = 1; panX = 0; panY = 0;
      if (s.modality === "CT") { $("preset").value = "40,400"; }
      applyPreset();
    }
    const slider = $("slice");
    slider.max = String(geom().depth - 1); slider.value = String(ks[view]);
    $("sliceno").textContent = `${ks[view] + 1} / ${geom().depth}`;
    $("main").hidden = false; $("message").hidden = true;
    document.body.dataset.state = "ready";
  }

  async function goSlice(k) {
    k = Math.max(0, Math.min(geom().depth - 1, k));
    if (k === ks[view] && sl && sl.view === view) return;
    ks[view] = k;
    $("slice").value = String(k); $("sliceno").textContent = `${k + 1} / ${geom().depth}`;
    polygon = []; lasso = [];
    await loadSlice();
  }

  async function act(path, extra, prompt) {
    if (busy || !st) return;
    setBusy(true);
    const t0 = performance.now();
    try {
      const s = await api("POST", path, extra || {});
      sent = prompt || null;
      showState(s);
      await loadSlice();
      const rt = Math.round(performance.now() - t0);
      const r = s.result || {};
      let text = `done in ${rt} ms`;
      if (r.latency_ms != null) text = `model ${r.latency_ms.toFixed(0)} ms · round trip ${rt} ms`;
      if (r.n_slices != null) text += ` · ${r.n_slices} slices (${r.slices_reached[0] + 1}-${r.slices_reached[1] + 1})`;
      if (r.nifti) text = `exported: ${r.nifti}${r.dicom_seg ? " and DICOM-SEG" : ""}`;
      $("status").textContent = text;
    } catch (e) {
      $("status").textContent = String(e.message || e);
    } finally { setBusy(false); }
  }

  function interact(kind, fields) {
    const prompt = kind === "scribble" || kind === "lasso"
      ? {kind, view, k: ks[view], points: fields.points, negative: !fields.positive} : null;
    return act("/api/interact", {kind, view, slice: ks[view], ...fields}, prompt);
  }
  const negative = (ev) => $("negative").checked || !!(ev && ev.shiftKey);
  function sendLasso(points, neg) {
    lasso = [];
    const distinct = new Set(points.map((q) => q.join(","))).size;
    if (distinct >= 3) interact("lasso", {points, positive: !neg});
    else { $("status").textContent = "lasso: needs at least 3 distinct corners"; draw(); }
  }

  function at(ev) {
    const r = canvas.getBoundingClientRect();
    const t = transform();
    const cx = (ev.clientX - r.left) * canvas.width / r.width, cy = (ev.clientY - r.top) * canvas.height / r.height;
    const x = Math.floor((cx - t.ox) / t.sx), y = Math.floor((cy - t.oy) / t.sy);
    return [Math.min(sl.cols - 1, Math.max(0, x)), Math.min(sl.rows - 1, Math.max(0, y))];
  }

  canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
  canvas.addEventListener("pointerdown", (ev) => {
    if (busy || !sl) return;
    const t = ev.button === 2 ? "wl" : ev.button === 1 ? "pan" : tool();
    if (ev.button > 2) return;
    canvas.setPointerCapture(ev.pointerId);
    if (t === "wl" || t === "pan") { drag = {kind: t, x: ev.clientX, y: ev.clientY, level, width, panX, panY}; return; }
    const p = at(ev);
    if (t === "click_pos" || t === "click_neg") { interact(t, {point: p}); return; }
    if (t === "polygon") { polygon.push(p); draw(); return; }
    drag = {kind: t, points: [p]};
    if (t === "scribble" || t === "lasso") Object.assign(drag, {negative: negative(ev), x: ev.clientX, y: ev.clientY, moved: 0});
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    if (drag.kind === "wl") {
      const s = (st.range[1] - st.range[0] || 1) / 400;
      $("preset").value = "custom";
      setWindow(drag.level - (ev.clientY - drag.y) * s, drag.width + (ev.clientX - drag.x) * s);
      return;
    }
    if (drag.kind === "pan") { panX = drag.panX + ev.clientX - drag.x; panY = drag.panY + ev.clientY - drag.y; draw(); return; }
    if (drag.moved !== undefined) drag.moved = Math.max(drag.moved, Math.hypot(ev.clientX - drag.x, ev.clientY - drag.y));
    const p = at(ev), last = drag.points[drag.points.length - 1];
    if (last[0] !== p[0] || last[1] !== p[1]) { drag.points.push(p); draw(); }
  });
  canvas.addEventListener("pointerup", () => {
    if (!drag) return;
    const d = drag; drag = null;
    if (d.kind === "wl" || d.kind === "pan") return;
    if (d.kind === "box") {
      const [p, q] = [d.points[0], d.points[d.points.length - 1]];
      if (Math.abs(p[0] - q[0]) >= 2 && Math.abs(p[1] - q[1]) >= 2) interact("box", {box: [p, q]}); else draw();
    } else if (d.kind === "scribble") {
      interact("scribble", {points: d.points, positive: !d.negative});
    } else if (d.kind === "lasso") {
      // a drag (over 3+ pixels and 8+ screen px: not a click's jitter) with no corners pending
      // is a freehand outline, closed at once; otherwise the press is a corner (double-click
      // closes)
      if (!lasso.length && d.points.length >= 3 && d.moved >= 8) sendLasso(d.points, d.negative);
      else {
        for (const q of d.points) {
          const last = lasso[lasso.length - 1];
          if (!last || last[0] !== q[0] || last[1] !== q[1]) lasso.push(q);
        }
        draw();
      }
    } else interact(d.kind, {points: d.points, radius: Number($("radius").value)});
  });
  canvas.addEventListener("dblclick", (ev) => {
    if (tool() === "lasso") { sendLasso(lasso, negative(ev)); return; }
    if (tool() !== "polygon") return;
    const pts = polygon; polygon = [];
    if (pts.length >= 3) interact("polygon", {points: pts, erase: ev.shiftKey}); else draw();
  });
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    if (!sl) return;
    if (ev.ctrlKey) { zoom = Math.max(0.25, Math.min(16, zoom * (ev.deltaY < 0 ? 1.25 : 0.8))); draw(); return; }
    goSlice(ks[view] + (ev.deltaY > 0 ? 1 : -1));
  }, {passive: false});

  $("slice").addEventListener("input", (ev) => goSlice(Number(ev.target.value)));
  for (const r of document.querySelectorAll("input[name=view]")) {
    r.addEventListener("change", () => { view = r.value; polygon = []; lasso = []; zoom = 1; panX = panY = 0; showState(st); loadSlice(); });
  }
  $("preset").addEventListener("change", applyPreset);
  $("level").addEventListener("change", () => { $("preset").value = "custom"; setWindow(Number($("level").value), width); });
  $("width").addEventListener("change", () => { $("preset").value = "custom"; setWindow(level, Number($("width").value)); });
  $("opacity").addEventListener("input", render);
  $("zoomin").addEventListener("click", () => { zoom = Math.min(16, zoom * 1.25); draw(); });
  $("zoomout").addEventListener("click", () => { zoom = Math.max(0.25, zoom * 0.8); draw(); });
  $("fit").addEventListener("click", () => { zoom = 1; panX = panY = 0; draw(); });
  $("addlabel").addEventListener("click", () => {
    const name = $("newname").value.trim();
    if (name) { act("/api/label", {name, colour: $("newcolour").value}); $("newname").value = ""; }
  });
  $("items").addEventListener("change", () => act("/api/open", {item_id: $("items").value}));
  $("overlap").addEventListener("change", () => act("/api/overlap", {policy: $("overlap").value}));
  $("propagate").addEventListener("click", () => {
    const reach = Number($("reach").value);
    interact("propagate", reach > 0 ? {direction: "both", max_slices: reach} : {direction: "both"});
  });
  $("undo").addEventListener("click", () => { polygon = []; lasso = []; act("/api/undo"); });
  $("negative").addEventListener("change", () => draw());
  for (const r of document.querySelectorAll("input[name=tool]")) r.addEventListener("change", () => { lasso = []; draw(); });
  $("accept").addEventListener("click", () => act("/api/accept"));
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" && !["radio", "range"].includes(ev.target.type)) return;
    if (ev.target.tagName === "SELECT") return;
    const pick = {b: "box", p: "click_pos", n: "click_neg", s: "scribble", l: "lasso", r: "brush", e: "erase",
                  g: "polygon", w: "wl", m: "pan"}[ev.key.toLowerCase()];
    if (pick && !ev.ctrlKey && !ev.metaKey) {
      const el = document.querySelector(`input[value=${pick}]`);
      if (el && el.offsetParent !== null) el.checked = true;
    } else if (ev.key === "z" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); $("undo").click(); }
    else if (ev.key === "t" || ev.key === "T") { $("propagate").click(); }
    else if (ev.key === "ArrowUp" || ev.key === "PageUp") { ev.preventDefault(); goSlice(ks[view] + 1); }
    else if (ev.key === "ArrowDown" || ev.key === "PageDown") { ev.preventDefault(); goSlice(ks[view] - 1); }
    else if (ev.key === "Enter") { ev.preventDefault(); $("accept").click(); }
    else if ((ev.key === "x" || ev.key === "X") && $("negative").offsetParent !== null) { $("negative").click(); }
    else if (ev.key === "Escape") { polygon = []; lasso = []; drag = null; draw(); }
  });

  function fitCanvas() {
    const stage = $("stage");
    canvas.width = Math.max(300, stage.clientWidth - 4);
    canvas.height = Math.max(300, innerHeight - 90);
    draw();
  }
  addEventListener("resize", fitCanvas);

  async function start() {
    setBusy(true);
    try {
      showState(await api("POST", "/api/claim"));
      fitCanvas();
      await loadSlice();
      setInterval(() => api("POST", "/api/heartbeat").catch(() => {}), 5000);
    } catch (e) {
      if (document.body.dataset.state !== "refused") fatal(String(e.message || e));
    } finally { setBusy(false); }
  }
  start();
})();
