// sambench annotate: the page. Talks to the session's HTTP API (see server.py); no external assets.
"use strict";
(() => {
  const tab = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
  // the session's API token, written into the page by the server (only its own pages can read it)
  const token = document.querySelector("meta[name=sambench-token]").content;
  const auth = {"X-Sambench-Tab": tab, "X-Sambench-Token": token};
  const $ = (id) => document.getElementById(id);
  const canvas = $("view");
  const ctx = canvas.getContext("2d");
  let view = null;          // the server's view of the object in progress
  let image = null;         // HTMLImageElement of the current image
  let layers = {mask: null, others: null};  // tinted overlays (canvases)
  let drag = null;          // {kind, points: [[x, y]...]} while drawing
  let polygon = [];         // corners of the polygon being drawn
  let busy = false;

  function setBusy(b) { busy = b; document.body.dataset.busy = b ? "1" : "0"; }

  async function api(method, path, body) {
    const opts = {method, headers: {...auth}};
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    const data = await r.json().catch(() => ({error: r.statusText}));
    if (r.status === 409 && /another browser tab/.test(data.error || "")) {
      fatal(data.error);
      throw new Error(data.error);
    }
    if (!r.ok) { throw new Error(data.error || r.statusText); }
    return data;
  }

  function fatal(text) {
    $("main").hidden = true;
    const m = $("message");
    m.textContent = text;
    m.hidden = false;
    document.body.dataset.state = "refused";
  }

  function tool() { return document.querySelector("input[name=tool]:checked").value; }

  function loadImage(src) {
    return new Promise((ok, bad) => {
      const im = new Image();
      im.onload = () => ok(im);
      im.onerror = () => bad(new Error("cannot load " + src));
      im.src = src;
    });
  }

  // an API image: fetched with the token (an <img src> cannot send it), shown from a blob: URL
  async function apiImage(path) {
    const r = await fetch(path, {headers: auth});
    if (!r.ok) {
      const data = await r.json().catch(() => ({error: r.statusText}));
      throw new Error(data.error || r.statusText);
    }
    const url = URL.createObjectURL(await r.blob());
    try { return await loadImage(url); } finally { URL.revokeObjectURL(url); }
  }

  async function tinted(b64, rgba) {
    const im = await loadImage("data:image/png;base64," + b64);
    const c = document.createElement("canvas");
    c.width = im.width; c.height = im.height;
    const g = c.getContext("2d");
    g.drawImage(im, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height);
    for (let i = 0; i < d.data.length; i += 4) {
      const on = d.data[i] > 127;
      d.data[i] = rgba[0]; d.data[i + 1] = rgba[1]; d.data[i + 2] = rgba[2];
      d.data[i + 3] = on ? rgba[3] : 0;
    }
    g.putImageData(d, 0, 0);
    return c;
  }

  async function show(v) {
    view = v;
    $("who").textContent = `${v.annotator} · ${v.mode === "model" ? "with " + v.model : "manual"}`;
    $("progress").textContent = `${v.accepted} / ${v.total} objects accepted`;
    document.body.classList.toggle("manual", v.mode === "manual");
    if (v.done) {
      $("main").hidden = true;
      $("message").textContent = "All objects of this prepared folder are annotated. You can close this tab.";
      $("message").hidden = false;
      document.body.dataset.state = "done";
      return;
    }
    $("main").hidden = false;
    $("message").hidden = true;
    if (v.mode === "manual" && tool().startsWith("click")) { document.querySelector("input[value=box]").checked = true; }
    $("object").textContent = v.object_name;
    $("imageid").textContent = `${v.image_id} · label ${v.label_value}`;
    $("objects").replaceChildren(...v.objects.map((o) => {
      const li = document.createElement("li");
      li.textContent = o.object_name;
      if (o.accepted) li.classList.add("done");
      if (o.label_value === v.label_value) li.classList.add("current");
      return li;
    }));
    if (!image || image.dataset.id !== v.image_id) {
      image = await apiImage("/api/image/" + encodeURIComponent(v.image_id));
      image.dataset.id = v.image_id;
      canvas.width = v.width; canvas.height = v.height;
      fit();
      polygon = [];
    }
    layers.mask = await tinted(v.mask, [245, 197, 66, 110]);
    layers.others = await tinted(v.others, [66, 135, 245, 80]);
    document.body.dataset.state = "ready";
    document.body.dataset.image = v.image_id;
    document.body.dataset.area = String(v.area);
    draw();
  }

  function fit() {
    const stage = $("stage");
    const s = Math.max(1, Math.min((stage.clientWidth - 4) / canvas.width,
                                   (innerHeight - 90) / canvas.height, 4));
    canvas.style.width = Math.round(canvas.width * s) + "px";
    canvas.style.height = Math.round(canvas.height * s) + "px";
  }

  function px() { return canvas.width / canvas.clientWidth; }  // image pixels per CSS pixel

  function draw() {
    if (!image) return;
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(image, 0, 0);
    if (layers.others) ctx.drawImage(layers.others, 0, 0);
    if (layers.mask) ctx.drawImage(layers.mask, 0, 0);
    const lw = Math.max(1, px());
    ctx.lineWidth = lw;
    if (view && view.box) {
      const [x0, y0, x1, y1] = view.box;
      ctx.strokeStyle = "#4caf50";
      ctx.strokeRect(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
    }
    for (const [x, y, pos] of (view && view.clicks) || []) {
      ctx.fillStyle = pos ? "#4caf50" : "#e53935";
      ctx.beginPath(); ctx.arc(x + .5, y + .5, 3 * lw, 0, 2 * Math.PI); ctx.fill();
    }
    if (drag && drag.kind === "box" && drag.points.length > 1) {
      const [a, b] = [drag.points[0], drag.points[drag.points.length - 1]];
      ctx.strokeStyle = "#4caf50";
      ctx.setLineDash([4 * lw, 3 * lw]);
      ctx.strokeRect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
      ctx.setLineDash([]);
    }
    if (drag && (drag.kind === "brush" || drag.kind === "erase")) {
      ctx.strokeStyle = drag.kind === "brush" ? "rgba(245,197,66,.8)" : "rgba(229,57,53,.8)";
      ctx.lineWidth = 2 * radius() + 1; ctx.lineCap = "round"; ctx.lineJoin = "round";
      ctx.beginPath();
      drag.points.forEach(([x, y], i) => (i ? ctx.lineTo(x + .5, y + .5) : ctx.moveTo(x + .5, y + .5)));
      if (drag.points.length === 1) ctx.lineTo(drag.points[0][0] + .5, drag.points[0][1] + .5);
      ctx.stroke();
      ctx.lineWidth = lw;
    }
    if (polygon.length) {
      ctx.strokeStyle = "#00bcd4"; ctx.fillStyle = "#00bcd4";
      ctx.beginPath();
      polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x + .5, y + .5) : ctx.moveTo(x + .5, y + .5)));
      ctx.stroke();
      for (const [x, y] of polygon) ctx.fillRect(x - lw, y - lw, 2 * lw + 1, 2 * lw + 1);
    }
  }

  function radius() { return Number($("radius").value); }

  function at(ev) {
    const r = canvas.getBoundingClientRect();
    const x = Math.floor((ev.clientX - r.left) * canvas.width / r.width);
    const y = Math.floor((ev.clientY - r.top) * canvas.height / r.height);
    return [Math.min(canvas.width - 1, Math.max(0, x)), Math.min(canvas.height - 1, Math.max(0, y))];
  }

  async function act(path, extra) {
    if (busy || !view || view.done) return;
    setBusy(true);
    const t0 = performance.now();
    try {
      const body = {image_id: view.image_id, label_value: view.label_value, ...(extra || {})};
      const v = await api("POST", path, body);
      await show(v);
      const rt = Math.round(performance.now() - t0);
      $("status").textContent = v.latency_ms != null && extra && /box|click/.test(extra.kind || "")
        ? `model ${v.latency_ms.toFixed(0)} ms · round trip ${rt} ms` : `done in ${rt} ms`;
    } catch (e) {
      $("status").textContent = String(e.message || e);
    } finally {
      setBusy(false);
    }
  }

  const interact = (kind, fields) => act("/api/interact", {kind, ...fields});

  canvas.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || busy) return;
    const p = at(ev);
    const t = tool();
    if (t === "click_pos" || t === "click_neg") { interact(t, {point: p}); return; }
    if (t === "polygon") {
      const last = polygon[polygon.length - 1];
      if (!last || last[0] !== p[0] || last[1] !== p[1]) polygon.push(p);
      draw(); return;
    }
    drag = {kind: t, points: [p]};
    canvas.setPointerCapture(ev.pointerId);
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const p = at(ev);
    const last = drag.points[drag.points.length - 1];
    if (last[0] !== p[0] || last[1] !== p[1]) { drag.points.push(p); draw(); }
  });
  canvas.addEventListener("pointerup", () => {
    if (!drag) return;
    const d = drag; drag = null;
    if (d.kind === "box") {
      const [a, b] = [d.points[0], d.points[d.points.length - 1]];
      if (Math.abs(a[0] - b[0]) >= 2 && Math.abs(a[1] - b[1]) >= 2) interact("box", {box: [a, b]});
      else draw();
    } else {
      interact(d.kind, {points: d.points, radius: radius()});
    }
  });
  function closePolygon(erase) {
    const pts = polygon; polygon = [];
    if (pts.length >= 3) interact("polygon", {points: pts, erase}); else draw();
  }
  canvas.addEventListener("dblclick", (ev) => { if (tool() === "polygon") closePolygon(ev.shiftKey); });

  $("undo").addEventListener("click", () => { polygon = []; act("/api/undo"); });
  $("accept").addEventListener("click", () => act("/api/accept"));
  $("next").addEventListener("click", () => act("/api/next_image"));
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" && ev.target.type !== "radio") return;
    const pick = {b: "box", p: "click_pos", n: "click_neg", r: "brush", e: "erase", g: "polygon"}[ev.key.toLowerCase()];
    if (pick && !ev.ctrlKey && !ev.metaKey) {
      const el = document.querySelector(`input[value=${pick}]`);
      if (el && el.offsetParent !== null) el.checked = true;
    } else if (ev.key === "z" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); $("undo").click(); }
    else if (ev.key === "Enter") { ev.preventDefault(); if (polygon.length) closePolygon(ev.shiftKey); else $("accept").click(); }
    else if (ev.key === "ArrowRight") { $("next").click(); }
    else if (ev.key === "Escape") { polygon = []; drag = null; draw(); }
  });
  addEventListener("resize", () => { if (image) { fit(); draw(); } });

  async function start() {
    setBusy(true);
    try {
      await show(await api("POST", "/api/claim"));
      setInterval(() => api("POST", "/api/heartbeat").catch(() => {}), 5000);
    } catch (e) {
      if (document.body.dataset.state !== "refused") fatal(String(e.message || e));
    } finally {
      setBusy(false);
    }
  }
  start();
})();
