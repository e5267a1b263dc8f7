// RushCatalog review desk (asset page): the review queue and filmstrip, decide-and-advance
// without page loads (the next clip's page and proxy are preloaded), the player and its
// keys. Needs app.js (window.RC). docs/web.md, "The review desk", lists every key.
"use strict";
(function () {
  const RC = window.RC;
  if (!RC || !document.querySelector("#review")) return;
  const { $, $$, api, toast, typing, setBadge, decisionOf } = RC;
  const H = RC.history;

  let R = null;                // the mounted review section and its player
  let queue = null;            // the last queue answer (see web/review_api.py)
  const pages = new Map();     // url -> Promise of the page's HTML (prefetched)
  const preloads = new Map();  // proxy url -> a hidden <video> buffering it
  const PRELOADS = 3;
  //: Clips decided in this tab stay in the queue of the same filter (sent as `also=`).
  const STICKY_SENT = 150;

  const settings = {
    get autoplay() { return localStorage.getItem("rc.autoplay") === "1"; },
    set autoplay(on) { localStorage.setItem("rc.autoplay", on ? "1" : "0"); },
  };

  // ---- clips decided in this session (per filter) ------------------------------------------
  const stickyKey = (qs) => "rc.sticky:" + qs;
  function sticky(qs) {
    try { return JSON.parse(sessionStorage.getItem(stickyKey(qs)) || "[]"); } catch (e) { return []; }
  }
  function keepInQueue(qs, id) {
    const ids = sticky(qs).filter((x) => x !== id);
    ids.push(id);
    try { sessionStorage.setItem(stickyKey(qs), JSON.stringify(ids.slice(-500))); } catch (e) { /* full */ }
  }

  const urlOf = (id, qs) => `/assets/${id}` + (qs ? `?${qs}` : "");

  // ---- pages and media prefetch -------------------------------------------------------------
  // Pages are parsed when prefetched, off the critical path of the next key press.
  function fetchPage(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
      .then((html) => new DOMParser().parseFromString(html, "text/html"));
  }
  function prefetch(url) {
    if (!pages.has(url)) {
      const p = fetchPage(url);
      p.catch(() => pages.delete(url));
      pages.set(url, p);
      while (pages.size > 6) pages.delete(pages.keys().next().value);
    }
    return pages.get(url);
  }
  function preloadBin() {
    let bin = $("#preload-bin");
    if (!bin) {
      bin = document.createElement("div");
      bin.id = "preload-bin";
      bin.setAttribute("aria-hidden", "true");
      document.body.appendChild(bin);
    }
    return bin;
  }
  function preloadMedia(item) {
    if (!item || !item.proxy || item.kind !== "video" || preloads.has(item.proxy)) return;
    const v = document.createElement("video");
    v.preload = "auto";
    v.muted = true;
    v.playsInline = true;
    v.src = item.proxy;
    // Once buffered, a muted play/pause starts the decoder and audio path, so the real
    // play() after the swap has nothing left to set up.
    v.addEventListener("canplay", () => {
      if (v.id) return;
      v.play().then(() => { if (!v.id) { v.pause(); v.currentTime = 0; } }).catch(() => {});
    }, { once: true });
    preloadBin().appendChild(v);
    preloads.set(item.proxy, v);
    while (preloads.size > PRELOADS) {
      const [key, old] = preloads.entries().next().value;
      preloads.delete(key);
      old.removeAttribute("src");
      old.load();
      old.remove();
    }
  }

  // ---- the queue and its filmstrip ------------------------------------------------------------
  function queueIndex(id) { return queue ? queue.items.findIndex((it) => it.id === id) : -1; }
  function neighbour(delta) {
    if (!R) return null;
    const i = queueIndex(R.id);
    if (i >= 0) return queue.items[i + delta] || null;
    const url = delta > 0 ? R.root.dataset.next : R.root.dataset.prev;
    return url ? { url } : null;
  }
  async function loadQueue() {
    const r = R;
    await inflight;
    if (R !== r) return;
    const also = sticky(r.qs).slice(-STICKY_SENT).join(",");
    const url = `/api/review/queue?${r.qs ? r.qs + "&" : ""}at=${r.id}&n=10` + (also ? `&also=${also}` : "");
    let data;
    try {
      const resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!resp.ok) return;
      data = await resp.json();
    } catch (e) { return; }
    if (R !== r) return;
    data.forId = r.id;
    queue = data;
    renderQueue();
    const next = neighbour(1), prev = neighbour(-1);
    if (next && next.url) { prefetch(next.url); preloadMedia(next); }
    if (prev && prev.url) prefetch(prev.url);
  }
  function clock(s) {
    if (s === null || s === undefined || !isFinite(s)) return "";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return h ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}` : `${m}:${String(sec).padStart(2, "0")}`;
  }
  function renderQueue() {
    if (!R) return;
    const pos = $("#queue-pos", R.root), reel = $("#reel", R.root);
    if (!pos || !reel) return;
    const i = queueIndex(R.id);
    if (!queue || i < 0) { pos.textContent = ""; reel.textContent = ""; return; }
    const place = queue.index + (i - queue.offset) + 1;
    pos.textContent = `${place} of ${queue.total}`;
    reel.textContent = "";
    for (const it of queue.items) {
      const a = document.createElement("a");
      a.href = it.url;
      a.className = "fs";
      a.dataset.id = it.id;
      a.dataset.state = it.state;
      a.title = it.name;
      const flag = decisionOf(it.state);
      if (it.id === R.id) a.classList.add("cur");
      if (flag) a.classList.add("decided", flag === "KEEP" ? "kept" : "rejected");
      if (it.extra) a.classList.add("extra");
      if (it.thumb) {
        const img = document.createElement("img");
        img.src = it.thumb; img.alt = ""; img.loading = "lazy";
        a.appendChild(img);
      } else {
        const ph = document.createElement("span");
        ph.className = "ph"; ph.textContent = it.kind;
        a.appendChild(ph);
      }
      const info = document.createElement("span");
      info.className = "fs-info";
      const f = document.createElement("b");
      f.className = "fs-flag";
      f.textContent = flag === "KEEP" ? "✓" : flag === "REJECT" ? "✕" : "";
      const stars = document.createElement("span");
      stars.className = "fs-stars";
      stars.textContent = it.rating ? "★".repeat(it.rating) : "";
      const dur = document.createElement("span");
      dur.className = "fs-dur";
      dur.textContent = clock(it.duration);
      const lbl = document.createElement("i");
      lbl.className = `fs-lbl lbl-${it.label || "none"}`;
      info.append(f, lbl, stars, dur);
      a.appendChild(info);
      reel.appendChild(a);
    }
    const prevLink = $("[data-prev-link]", R.root), nextLink = $("[data-next-link]", R.root);
    if (prevLink) prevLink.classList.toggle("disabled", i === 0);
    if (nextLink) nextLink.classList.toggle("disabled", i === queue.items.length - 1);
    const cur = $(".fs.cur", reel);
    if (cur) cur.scrollIntoView({ block: "nearest", inline: "center" });
  }
  function setState(state) {
    if (!R) return;
    R.root.dataset.state = state;
    setBadge($("#state-badge", R.root), state);
    const now = $("#state-now", R.root);
    if (now) now.textContent = RC.word(state);
    const decided = !!decisionOf(state);
    $$("[data-undo]", R.root).forEach((b) => (b.disabled = !decided));
    const i = queueIndex(R.id);
    if (i >= 0) queue.items[i].state = state;
    renderQueue();
  }

  // ---- client-side page change ------------------------------------------------------------------
  async function show(url, opts) {
    opts = opts || {};
    let doc;
    try {
      doc = await (opts.fresh ? fetchPage(url) : (pages.get(url) || fetchPage(url)));
    } catch (e) { window.location.href = url; return; }
    pages.delete(url);
    const parsed = doc.querySelector("#review");
    const old = $("#review");
    // Imported, not adopted: media elements made by DOMParser refuse to load once moved.
    const fresh = parsed ? document.importNode(parsed, true) : null;
    if (!fresh || !old) { window.location.href = url; return; }  // e.g. the login page
    const same = R && R.id === fresh.dataset.id;
    const incoming = $("#player", fresh);
    if (incoming && incoming.tagName !== "IMG") {
      const src = incoming.getAttribute("src");
      const abs = new URL(src, window.location.href).href;
      let reuse = null;
      if (same && R.player && R.player.src === abs) reuse = R.player;
      else if (preloads.has(src)) { reuse = preloads.get(src); preloads.delete(src); }
      if (reuse) {
        for (const name of ["controls", "poster", "playsinline", "preload"]) {
          if (incoming.hasAttribute(name)) reuse.setAttribute(name, incoming.getAttribute(name));
          else reuse.removeAttribute(name);
        }
        reuse.id = "player";
        reuse.muted = false;
        if (!same) { reuse.pause(); if (reuse.currentTime) reuse.currentTime = 0; }
        incoming.replaceWith(reuse);
      }
    }
    unmount();
    old.replaceWith(fresh);
    document.title = doc.title;
    if (opts.push !== false) window.history.pushState({ review: true }, "", url);
    mount(fresh);
    performance.mark("rc:shown");
    if (opts.advance && settings.autoplay && R.player) R.player.play().catch(() => {});
  }
  window.addEventListener("popstate", () => {
    if (window.location.pathname.startsWith("/assets/")) show(window.location.href, { push: false, fresh: true });
    else window.location.reload();
  });

  // ---- decisions --------------------------------------------------------------------------------
  // A decision is sent, and the next clip shown at once (on a LAN the answer comes while
  // the swap happens). A refused decision says so in a red toast and the strip shows the
  // clip unflagged; loadQueue waits for the answer so the strip never shows a stale flag.
  let inflight = Promise.resolve();
  let sending = 0;
  async function decide(decision) {
    const r = R;
    if (!r) return;
    const before = decisionOf(r.root.dataset.state);
    const after = decision === "CLEAR" ? null : decision;
    if (decision === "CLEAR" && !before) { toast("No flag to clear"); return; }
    const oldState = r.root.dataset.state;
    keepInQueue(r.qs, r.id);
    pages.delete(urlOf(r.id, r.qs));  // a prefetched copy would show the old flag
    const pending = H.apply({ type: "decision", id: r.id, name: r.name, before, after });
    inflight = pending.catch(() => null);
    // `data-pending` on <body> while a decision is on its way (the tests wait on it).
    sending += 1;
    document.body.dataset.pending = String(sending);
    pending.finally(() => {
      sending -= 1;
      if (sending) document.body.dataset.pending = String(sending);
      else delete document.body.dataset.pending;
    }).catch(() => {});
    performance.mark("rc:sent");
    const next = after ? neighbour(1) : null;
    const i = queueIndex(r.id);
    if (next) {
      if (i >= 0) queue.items[i].state = after === "KEEP" ? "DECIDED_KEEP" : "DECIDED_REJECT";
      show(next.url, { advance: true });
      pending.then(
        () => toast(after === "KEEP" ? `✓ Kept ${r.name}` : `✕ Rejected ${r.name}`),
        () => {
          const j = queueIndex(r.id);
          if (j >= 0) { queue.items[j].state = oldState; renderQueue(); }
        },
      );
      return;
    }
    let data;
    try { data = await pending; } catch (e) { return; }
    performance.mark("rc:decided");
    if (R !== r) return;
    setState(data.state);
    if (!after) toast("Flag cleared");
    else toast(after === "KEEP" ? "✓ Kept — last clip of this selection" : "✕ Rejected — last clip of this selection");
  }
  // "Reject as duplicate" (D): an ordinary REJECT whose history names the copy that is kept.
  async function rejectDuplicate() {
    const r = R;
    const button = r && $("[data-reject-duplicate]", r.root);
    if (!r || !button || button.disabled) return;
    keepInQueue(r.qs, r.id);
    pages.delete(urlOf(r.id, r.qs));
    let data;
    try { data = await api(`/api/assets/${r.id}/reject-duplicate`); } catch (e) { return; }
    if (R !== r) return;
    setState(data.state);
    toast(`✕ Rejected ${r.name} as duplicate`);
    const next = neighbour(1);
    if (next) show(next.url, { advance: true });
  }
  // ---- stars (keys 0-5) and colour labels (6-9; the same key again takes it off) ----------
  function showMarks(data) {
    if (!R) return;
    R.root.dataset.rating = data.rating;
    R.root.dataset.label = data.label;
    $$("#stars i", R.root).forEach((el, i) => el.classList.toggle("on", i < data.rating));
    const chip = $("#label-chip", R.root);
    if (chip) { chip.className = `lbl lbl-${data.label || "none"}`; chip.textContent = data.label; }
    const sel = $("#fields select[name=rating]", R.root);
    if (sel) sel.value = data.rating ? String(data.rating) : "";
    const i = queueIndex(R.id);
    if (i >= 0) { queue.items[i].rating = data.rating; queue.items[i].label = data.label; }
    renderQueue();
  }
  async function mark(digit) {
    const r = R;
    if (!r) return;
    const entry = { id: r.id, name: r.name };
    if (digit <= 5) {
      const before = +(r.root.dataset.rating || 0);
      if (before === digit) return;
      Object.assign(entry, { type: "rating", before, after: digit });
    } else {
      const name = RC.LABEL_NAMES[digit - 6];
      const before = r.root.dataset.label || "";
      Object.assign(entry, { type: "label", before, after: before === name ? "" : name });
    }
    let data;
    try { data = await H.apply(entry); } catch (e) { return; }
    if (R !== r) return;
    showMarks(data);
    toast(entry.type === "rating" ? (digit ? "★".repeat(digit) : "No stars") : (data.label ? `Label ${data.label}` : "Label removed"));
  }

  // Undo / redo (Ctrl/Cmd+Z, handled in app.js): show the clip that changed, as it is now.
  H.onChange((entry, how) => {
    if (how === "do" || !R) return;
    if (entry.type === "decision") keepInQueue(R.qs, entry.id);
    show(urlOf(entry.id, R.qs), { push: entry.id !== R.id, fresh: true });
  });

  // ---- mount one review section -------------------------------------------------------------------
  function listen(target, type, fn) {
    target.addEventListener(type, fn);
    R.off.push(() => target.removeEventListener(type, fn));
  }
  function unmount() {
    if (!R) return;
    stopShuttle();
    R.off.forEach((fn) => fn());
    if (R.linked) R.linked.pause();
    R = null;
  }
  function mount(root) {
    R = {
      root,
      id: root.dataset.id,
      qs: root.dataset.qs || "",
      name: root.dataset.name || "",
      player: $("#player", root),
      linked: $("#linked-audio", root),
      useLinked: $("#use-linked", root),
      tagInput: $("#tag-input", root),
      off: [],
    };
    const r = R;
    if (r.player && r.player.tagName === "IMG") r.player = null;
    $$("[data-decide]", root).forEach((b) => b.addEventListener("click", () => decide(b.dataset.decide)));
    $$("[data-undo]", root).forEach((b) => b.addEventListener("click", () => decide("CLEAR")));
    $$("[data-reject-duplicate]", root).forEach((b) => b.addEventListener("click", rejectDuplicate));
    const auto = $("#autoplay", root);
    if (auto) {
      auto.checked = settings.autoplay;
      auto.addEventListener("change", () => { settings.autoplay = auto.checked; });
    }
    mountPlayer(r);
    mountSide(r);
    mountSwipe(r);
    renderQueue();
    loadQueue();
  }

  // ---- player, waveform, thumbnail strip, transcript, linked audio ------------------------------------
  function seek(t) {
    const p = R && R.player;
    if (!p || !isFinite(t)) return;
    const d = p.duration;
    p.currentTime = Math.max(0, isFinite(d) ? Math.min(t, Math.max(0, d - 0.05)) : t);
  }
  function togglePlay() {
    const p = R && R.player;
    if (!p) return;
    if (p.paused) p.play().catch(() => {}); else p.pause();
  }
  function mountPlayer(r) {
    const player = r.player, linked = r.linked, useLinked = r.useLinked;
    const linkedOn = () => !!(linked && useLinked && useLinked.checked);
    function syncLinked(force) {
      if (!linkedOn() || !player) return;
      if (force || Math.abs(linked.currentTime - player.currentTime) > 0.15) linked.currentTime = player.currentTime;
      linked.playbackRate = player.playbackRate;
      if (player.paused && !linked.paused) linked.pause();
      if (!player.paused && linked.paused) linked.play().catch(() => {});
    }
    if (player && linked && useLinked) {
      useLinked.addEventListener("change", () => {
        player.muted = useLinked.checked;
        if (!useLinked.checked) linked.pause(); else syncLinked(true);
      });
      ["play", "pause", "seeked", "ratechange"].forEach((ev) => listen(player, ev, () => syncLinked(ev === "seeked")));
      listen(player, "timeupdate", () => syncLinked(false));
    }

    // Waveform from the peaks JSON: {"duration": s, "peaks": [..]} (0..1 or -1..1 values).
    const canvas = $("#waveform", r.root);
    let peaks = null, waveDuration = 0;
    function drawWave() {
      if (!canvas || !peaks) return;
      const w = canvas.clientWidth, h = canvas.clientHeight, dpr = window.devicePixelRatio || 1;
      canvas.width = w * dpr; canvas.height = h * dpr;
      const ctx = canvas.getContext("2d");
      ctx.scale(dpr, dpr);
      ctx.clearRect(0, 0, w, h);
      const dur = (player && isFinite(player.duration) && player.duration) || waveDuration || 1;
      const played = player ? (player.currentTime / dur) * w : 0;
      const n = peaks.length, mid = h / 2;
      let top = 0;
      for (const p of peaks) top = Math.max(top, Math.abs(+p || 0));
      const scale = top > 0 ? 1 / top : 1;  // normalised: quiet recordings stay readable
      for (let x = 0; x < w; x++) {
        const a = Math.floor((x / w) * n), b = Math.max(a + 1, Math.floor(((x + 1) / w) * n));
        let m = 0;
        for (let i = a; i < b && i < n; i++) m = Math.max(m, Math.abs(+peaks[i] || 0));
        const y = Math.max(1, m * scale * (h / 2 - 4));
        ctx.fillStyle = x < played ? "#4da3ff" : "#59636e";
        ctx.fillRect(x, mid - y, 1, y * 2);
      }
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(Math.round(played), 0, 1.5, h);
    }
    if (canvas && r.root.dataset.waveform) {
      fetch(r.root.dataset.waveform, { credentials: "same-origin" })
        .then((resp) => resp.json())
        .then((data) => {
          peaks = Array.isArray(data.peaks) ? data.peaks.flat() : [];
          waveDuration = +data.duration || 0;
          drawWave();
        })
        .catch(() => {});
      canvas.addEventListener("click", (ev) => {
        const rect = canvas.getBoundingClientRect();
        const dur = (player && isFinite(player.duration) && player.duration) || waveDuration;
        seek(((ev.clientX - rect.left) / rect.width) * dur);
        drawWave();
      });
      listen(window, "resize", drawWave);
    }

    // Thumbnail strip: frame i of n stands for the middle of its slice of the clip.
    $$("#strip img", r.root).forEach((img) => img.addEventListener("click", () => {
      if (!player || !isFinite(player.duration)) return;
      const i = +img.dataset.index, n = +img.dataset.count || 1;
      seek(((i + 0.5) / n) * player.duration);
    }));

    // Transcript: click a word or a line time to seek; the word being spoken is highlighted.
    const words = $$(".transcript .w", r.root);
    $$(".transcript [data-t]", r.root).forEach((el) => el.addEventListener("click", () => {
      seek(+el.dataset.t);
      if (player && player.paused) player.play().catch(() => {});
    }));
    let lastWord = null;
    if (player) {
      listen(player, "timeupdate", () => {
        drawWave();
        if (!words.length) return;
        const t = player.currentTime;
        let cur = null;
        for (const w of words) { if (+w.dataset.t <= t) cur = w; else break; }
        if (cur !== lastWord) {
          if (lastWord) lastWord.classList.remove("now");
          if (cur) cur.classList.add("now");
          lastWord = cur;
        }
      });
      listen(player, "seeked", drawWave);
      ["timeupdate", "seeked", "ratechange", "loadedmetadata", "pause"].forEach((ev) => listen(player, ev, showTime));
      // Clicking the picture gives it the focus (J/K/L shuttle); the controls stay usable.
      if (!player.hasAttribute("tabindex")) player.setAttribute("tabindex", "0");
      listen(player, "pointerdown", () => player.focus());
      if (player.readyState >= 1) setTimeout(showTime, 0);  // a buffered player fires nothing
      listen(player, "loadedmetadata", drawWave);
      // The player's own controls must not eat our shortcuts once clicked.
      listen(player, "keydown", (ev) => { if (ev.key === " ") ev.preventDefault(); });
    }
  }

  // ---- swipe on a touch screen: right keeps, left rejects (then the next clip) --------------
  function mountSwipe(r) {
    const stage = $(".stage", r.root);
    if (!stage) return;
    let start = null;
    stage.addEventListener("pointerdown", (ev) => {
      if (ev.pointerType === "touch") start = { x: ev.clientX, y: ev.clientY };
    });
    stage.addEventListener("pointermove", (ev) => {
      if (!start || ev.pointerType !== "touch") return;
      const dx = ev.clientX - start.x;
      stage.classList.toggle("swipe-keep", dx > 40);
      stage.classList.toggle("swipe-reject", dx < -40);
    });
    const end = (ev) => {
      if (!start || ev.pointerType !== "touch") return;
      const dx = ev.clientX - start.x, dy = ev.clientY - start.y;
      start = null;
      stage.classList.remove("swipe-keep", "swipe-reject");
      // A clear horizontal stroke only: vertical scrolling and taps stay what they are.
      if (Math.abs(dx) < 80 || Math.abs(dx) < 2 * Math.abs(dy)) return;
      const keep = $("button.keep", r.root);
      if (keep && keep.disabled) { toast("This clip cannot be decided now", true); return; }
      decide(dx > 0 ? "KEEP" : "REJECT");
    };
    stage.addEventListener("pointerup", end);
    stage.addEventListener("pointercancel", () => { start = null; stage.classList.remove("swipe-keep", "swipe-reject"); });
  }

  // ---- transport: timecode readout, frame step, J/K/L shuttle, speed --------------------------
  const RATES = [0.25, 0.5, 1, 1.5, 2, 4];
  function fpsOf(r) {
    const raw = r.root.dataset.fps || "";
    let fps = raw.includes("/") ? +raw.split("/")[0] / +raw.split("/")[1] : +raw;
    return isFinite(fps) && fps > 0 ? fps : 25;
  }
  function tcFrames(tc, fps) {
    const m = /^(\d\d):(\d\d):(\d\d)[:;.](\d\d)$/.exec(tc || "");
    if (!m) return null;
    const n = Math.round(fps);
    return ((+m[1] * 60 + +m[2]) * 60 + +m[3]) * n + +m[4];
  }
  function tcText(frames, fps) {
    const n = Math.round(fps), pad = (x) => String(x).padStart(2, "0");
    const f = frames % n, s = Math.floor(frames / n);
    return `${pad(Math.floor(s / 3600) % 24)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}:${pad(f)}`;
  }
  function showTime() {
    const r = R, p = r && r.player, el = r && $("#tc", r.root);
    if (!p || !el) return;
    const fps = fpsOf(r);
    const start = tcFrames(r.root.dataset.tcStart, fps);
    const frames = Math.floor(p.currentTime * fps + 1e-6);
    el.textContent = tcText((start || 0) + frames, fps);
    el.classList.toggle("source", start !== null);
    const rate = $("#rate", r.root);
    if (rate) rate.textContent = (shuttle.dir < 0 ? "◀ " : "") + `${shuttle.dir < 0 ? shuttle.speed : p.playbackRate}×`;
  }
  function frameStep(delta) {
    const p = R && R.player;
    if (!p) return;
    stopShuttle();
    p.pause();
    const fps = fpsOf(R);
    seek((Math.floor(p.currentTime * fps + 1e-6) + delta + 0.5) / fps);
  }
  function setRate(rate) {
    const p = R && R.player;
    if (!p) return;
    p.playbackRate = rate;
    showTime();
    toast(`Speed ${rate}×`);
  }
  function stepRate(delta) {
    const p = R && R.player;
    if (!p) return;
    const i = RATES.findIndex((x) => x >= p.playbackRate - 1e-6);
    setRate(RATES[Math.max(0, Math.min(RATES.length - 1, (i < 0 ? 2 : i) + delta))]);
  }
  // J/K/L: L plays forward (again: faster), J backward (stepped, browsers cannot play
  // in reverse), K stops. Only while the player has focus: elsewhere J/K change the clip.
  const shuttle = { dir: 0, speed: 1, timer: null };
  function stopShuttle() {
    if (shuttle.timer) clearInterval(shuttle.timer);
    shuttle.timer = null;
    shuttle.dir = 0;
  }
  function jkl(key) {
    const p = R && R.player;
    if (!p) return;
    if (key === "k") { stopShuttle(); p.pause(); p.playbackRate = 1; showTime(); return; }
    const dir = key === "l" ? 1 : -1;
    shuttle.speed = shuttle.dir === dir ? Math.min(8, shuttle.speed * 2) : 1;
    stopShuttle();
    shuttle.dir = dir;
    if (dir > 0) {
      p.playbackRate = shuttle.speed;
      p.play().catch(() => {});
    } else {
      p.pause();
      const tick = 1 / 12;
      shuttle.timer = setInterval(() => {
        if (!R || R.player !== p || p.currentTime <= 0) { stopShuttle(); showTime(); return; }
        seek(p.currentTime - tick * shuttle.speed);
      }, tick * 1000);
    }
    showTime();
  }
  const playerFocused = () => !!(R && R.player && document.activeElement === R.player);

  // ---- tags, suggestions, fields, bins, audio links (undoable where it makes sense) -----------------
  function renderTags(tags) {
    const ul = R && $("#tags", R.root);
    if (!ul) return;
    ul.textContent = "";
    for (const t of tags) {
      const li = document.createElement("li");
      li.textContent = t;
      const b = document.createElement("button");
      b.textContent = "×"; b.title = "Remove"; b.dataset.removeTag = t;
      li.appendChild(b);
      ul.appendChild(li);
    }
  }
  const currentTags = () => (R ? $$("#tags [data-remove-tag]", R.root).map((b) => b.dataset.removeTag) : []);
  const fieldsOf = (form) => Object.fromEntries(new FormData(form).entries());
  function mountSide(r) {
    const base = `/api/assets/${r.id}`;
    const entry = (extra) => ({ id: r.id, name: r.name, ...extra });
    if (r.tagInput) {
      r.tagInput.addEventListener("keydown", async (ev) => {
        if (ev.key === "Escape") { r.tagInput.blur(); return; }
        if (ev.key !== "Enter" || !r.tagInput.value.trim()) return;
        ev.preventDefault();
        const tag = r.tagInput.value.trim().replace(/\s+/g, " ");
        const data = currentTags().includes(tag)
          ? { tags: currentTags() }
          : await H.apply(entry({ type: "tag", tag, added: true }));
        renderTags(data.tags);
        r.tagInput.value = "";
        toast("Tag added");
      });
    }
    r.root.addEventListener("click", async (ev) => {
      const t = ev.target.closest ? ev.target : null;
      if (!t) return;
      const fs = t.closest(".fs");
      if (fs) { ev.preventDefault(); show(fs.getAttribute("href")); return; }
      const nav = t.closest("[data-prev-link], [data-next-link]");
      if (nav) {
        ev.preventDefault();
        const n = neighbour(nav.hasAttribute("data-next-link") ? 1 : -1);
        if (n) show(n.url);
        return;
      }
      const rm = t.closest("[data-remove-tag]");
      if (rm) {
        const data = await H.apply(entry({ type: "tag", tag: rm.dataset.removeTag, added: false }));
        renderTags(data.tags);
      }
      const acc = t.closest("[data-accept]");
      if (acc) {
        const tag = acc.dataset.accept;
        const had = currentTags().includes(tag);
        const data = await api(`${base}/suggestions/accept`, { tag });
        if (!had) H.record(entry({ type: "tag", tag, added: true }));
        renderTags(data.tags);
        acc.remove();
        toast(`Tag “${tag}” accepted`);
      }
      const un = t.closest("[data-unlink]");
      if (un) {
        await api(`/api/assets/${un.dataset.unlink}/unlink-audio`);
        show(urlOf(r.id, r.qs), { push: false, fresh: true });
      }
    });
    const form = $("#fields", r.root);
    if (form) {
      let saved = fieldsOf(form);
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const now = fieldsOf(form);
        await H.apply(entry({ type: "fields", before: saved, after: now }));
        saved = now;
        toast("Fields saved");
      });
    }
    $$("[data-bin]", r.root).forEach((box) => box.addEventListener("change", async () => {
      const label = box.parentElement ? box.parentElement.textContent.trim() : "";
      await H.apply(entry({ type: "bin", bin: +box.dataset.bin, binName: label, added: box.checked }));
      toast(box.checked ? "Added to bin" : "Removed from bin");
    }));
    const linkSel = $("#link-audio", r.root);
    if (linkSel) {
      linkSel.addEventListener("change", async () => {
        if (!linkSel.value) return;
        await api(`${base}/link-audio`, { audio_id: linkSel.value });
        show(urlOf(r.id, r.qs), { push: false, fresh: true });
      });
    }
  }

  // ---- keyboard -------------------------------------------------------------------------------------
  document.addEventListener("keydown", (ev) => {
    if (!R || ev.defaultPrevented || typing(ev)) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    const player = R.player;
    if (/^Digit[0-9]$/.test(ev.code) || /^[0-9]$/.test(key)) {
      const digit = /^[0-9]$/.test(key) ? +key : +ev.code.slice(5);
      ev.preventDefault();
      if (ev.shiftKey) { if (player && isFinite(player.duration)) seek((digit / 10) * player.duration); }
      else mark(digit);
      return;
    }
    const step = (delta) => {
      const n = neighbour(delta);
      if (n) show(n.url);
      else toast(delta > 0 ? "Last clip of this selection" : "First clip of this selection");
    };
    if (playerFocused() && (key === "j" || key === "k" || key === "l")) {
      ev.preventDefault();
      jkl(key);
      return;
    }
    switch (key) {
      case ",": ev.preventDefault(); frameStep(-1); break;
      case ".": ev.preventDefault(); frameStep(1); break;
      case "[": ev.preventDefault(); stepRate(-1); break;
      case "]": ev.preventDefault(); stepRate(1); break;
      case "p": ev.preventDefault(); decide("KEEP"); break;
      case "x": ev.preventDefault(); decide("REJECT"); break;
      case "u": ev.preventDefault(); decide("CLEAR"); break;
      case "d": ev.preventDefault(); rejectDuplicate(); break;
      case "ArrowRight": case "j": ev.preventDefault(); step(1); break;
      case "ArrowLeft": case "k": ev.preventDefault(); step(-1); break;
      case "Escape": window.location.href = R.root.dataset.back || "/"; break;
      case " ": ev.preventDefault(); togglePlay(); break;
      case "l": ev.preventDefault(); if (player) seek(player.currentTime + (ev.shiftKey ? 1 : 5)); break;
      case "h": ev.preventDefault(); if (player) seek(player.currentTime - (ev.shiftKey ? 1 : 5)); break;
      case "a":
        if (R.useLinked && !R.useLinked.disabled) {
          R.useLinked.checked = !R.useLinked.checked;
          R.useLinked.dispatchEvent(new Event("change"));
        }
        break;
      case "t": if (R.tagInput) { ev.preventDefault(); R.tagInput.focus(); } break;
      default:
    }
  });

  // Live: a clip changed elsewhere (reprocess finished, batch apply, another reviewer) is
  // shown as it now is; the strip follows every clip it lists.
  RC.onAssetEvent = (ev) => {
    if (!R) return;
    const i = queueIndex(ev.uuid);
    if (i >= 0 && queue.items[i].state !== ev.to) { queue.items[i].state = ev.to; renderQueue(); }
    if (ev.uuid === R.id && ev.to !== R.root.dataset.state && !sending) {
      show(urlOf(R.id, R.qs), { push: false, fresh: true });
    }
  };

  window.history.replaceState({ review: true }, "", window.location.href);
  mount($("#review"));
  RC.review = { show, get queue() { return queue; }, get current() { return R; } };
})();
