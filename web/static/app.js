// RushCatalog web UI: keyboard culling, player helpers, live updates. No build step.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const csrf = () => ($('meta[name="csrf"]') || {}).content || "";

  function toast(text, isError) {
    const el = $("#toast");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("err", !!isError);
    el.classList.add("show");
    clearTimeout(el._t);
    el._t = setTimeout(() => el.classList.remove("show"), isError ? 4000 : 1500);
  }

  async function api(url, body) {
    const resp = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), Accept: "application/json" },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      const msg = (data && data.error) || resp.statusText || "request failed";
      toast(msg, true);
      throw new Error(msg);
    }
    return data;
  }

  function typing(ev) {
    const t = ev.target;
    return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  }

  // ---- help overlay -------------------------------------------------------------------
  const help = $("#help");
  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
  }
  $$("[data-help]").forEach((b) => b.addEventListener("click", () => toggleHelp()));
  if (help) help.addEventListener("click", (e) => { if (e.target === help) toggleHelp(false); });

  function setBadge(el, state) {
    if (!el) return;
    el.className = el.className.replace(/\bst-[A-Z_]+/g, "").trim() + " st-" + state;
    el.textContent = state;
  }

  // ---- library grid -------------------------------------------------------------------
  const grid = $("#grid");
  function cards() { return $$(".card", grid); }
  function selected() { return document.activeElement && document.activeElement.classList.contains("card") ? document.activeElement : null; }
  function columns() {
    const cs = cards();
    if (cs.length < 2) return 1;
    const top = cs[0].offsetTop;
    let n = 0;
    for (const c of cs) { if (c.offsetTop !== top) break; n++; }
    return Math.max(1, n);
  }
  function focusCard(i) {
    const cs = cards();
    if (!cs.length) return;
    const c = cs[Math.max(0, Math.min(cs.length - 1, i))];
    c.focus();
    c.scrollIntoView({ block: "nearest" });
  }
  async function decideCard(card, decision) {
    const id = card.dataset.id;
    const data = decision === "UNDO"
      ? await api(`/api/assets/${id}/undo`)
      : await api(`/api/assets/${id}/decide`, { decision });
    setBadge($("[data-badge]", card), data.state);
    card.classList.add(decision === "REJECT" ? "flash-reject" : "flash-keep");
    setTimeout(() => card.classList.remove("flash-keep", "flash-reject"), 400);
    if (decision !== "UNDO") focusCard(cards().indexOf(card) + 1);
  }
  if (grid) {
    const first = cards()[0];
    if (first && !typing({ target: document.activeElement })) first.focus();
  }

  // ---- review page --------------------------------------------------------------------
  const review = $("#review");
  const player = $("#player");
  const linked = $("#linked-audio");
  const useLinked = $("#use-linked");

  function go(url) { if (url) window.location.href = url; }

  async function decideHere(decision) {
    if (!review) return;
    const id = review.dataset.id;
    let data;
    try {
      data = decision === "UNDO"
        ? await api(`/api/assets/${id}/undo`)
        : await api(`/api/assets/${id}/decide`, { decision });
    } catch (e) { return; }
    review.dataset.state = data.state;
    setBadge($("#state-badge"), data.state);
    const decided = data.state === "DECIDED_KEEP" || data.state === "DECIDED_REJECT";
    $$("[data-undo]").forEach((b) => (b.disabled = !decided));
    if (decision === "UNDO") { toast("Decision undone"); return; }
    toast(decision === "KEEP" ? "✓ Kept" : "✕ Rejected");
    if (review.dataset.next) setTimeout(() => go(review.dataset.next), 120);
    else toast("Last asset of this selection", false);
  }
  async function rejectDuplicate() {
    const button = $("[data-reject-duplicate]");
    if (!review || !button || button.disabled) return;
    let data;
    try { data = await api(`/api/assets/${review.dataset.id}/reject-duplicate`); } catch (e) { return; }
    review.dataset.state = data.state;
    setBadge($("#state-badge"), data.state);
    $$("[data-undo]").forEach((b) => (b.disabled = false));
    toast("✕ Rejected as duplicate");
    if (review.dataset.next) setTimeout(() => go(review.dataset.next), 120);
  }
  $$("[data-reject-duplicate]").forEach((b) => b.addEventListener("click", rejectDuplicate));
  $$("[data-decide]").forEach((b) => b.addEventListener("click", () => decideHere(b.dataset.decide)));
  $$("[data-undo]").forEach((b) => b.addEventListener("click", () => decideHere("UNDO")));

  function seek(t) {
    if (!player || !isFinite(t)) return;
    const d = player.duration;
    player.currentTime = Math.max(0, isFinite(d) ? Math.min(t, Math.max(0, d - 0.05)) : t);
  }
  function togglePlay() {
    if (!player) return;
    if (player.paused) player.play().catch(() => {}); else player.pause();
  }

  // Linked audio: a second element kept in sync with the video (the video is muted meanwhile).
  function linkedOn() { return !!(linked && useLinked && useLinked.checked); }
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
    ["play", "pause", "seeked", "ratechange"].forEach((ev) => player.addEventListener(ev, () => syncLinked(ev === "seeked")));
    player.addEventListener("timeupdate", () => syncLinked(false));
  }

  // Waveform from the peaks JSON: {"duration": s, "peaks": [..]} (0..1 or -1..1 values).
  const canvas = $("#waveform");
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
  if (canvas && review && review.dataset.waveform) {
    fetch(review.dataset.waveform, { credentials: "same-origin" })
      .then((r) => r.json())
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
    window.addEventListener("resize", drawWave);
  }

  // Thumbnail strip: frame i of n stands for the middle of its slice of the clip.
  $$("#strip img").forEach((img) => img.addEventListener("click", () => {
    if (!player || !isFinite(player.duration)) return;
    const i = +img.dataset.index, n = +img.dataset.count || 1;
    seek(((i + 0.5) / n) * player.duration);
  }));

  // Transcript: click a word or a line time to seek; the word being spoken is highlighted.
  const words = $$(".transcript .w");
  $$(".transcript [data-t]").forEach((el) => el.addEventListener("click", () => {
    seek(+el.dataset.t);
    if (player && player.paused) player.play().catch(() => {});
  }));
  let lastWord = null;
  if (player) {
    player.addEventListener("timeupdate", () => {
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
    player.addEventListener("seeked", drawWave);
    player.addEventListener("loadedmetadata", drawWave);
  }

  // Tags, suggestions, fields, bins, audio links.
  function renderTags(tags) {
    const ul = $("#tags");
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
  const tagBase = review ? `/api/assets/${review.dataset.id}` : "";
  const tagInput = $("#tag-input");
  if (tagInput) {
    tagInput.addEventListener("keydown", async (ev) => {
      if (ev.key === "Escape") { tagInput.blur(); return; }
      if (ev.key !== "Enter" || !tagInput.value.trim()) return;
      ev.preventDefault();
      const data = await api(`${tagBase}/tags`, { add: tagInput.value });
      renderTags(data.tags);
      tagInput.value = "";
      toast("Tag added");
    });
  }
  document.addEventListener("click", async (ev) => {
    const rm = ev.target.closest && ev.target.closest("[data-remove-tag]");
    if (rm && review) {
      const data = await api(`${tagBase}/tags`, { remove: rm.dataset.removeTag });
      renderTags(data.tags);
    }
    const acc = ev.target.closest && ev.target.closest("[data-accept]");
    if (acc && review) {
      const data = await api(`${tagBase}/suggestions/accept`, { tag: acc.dataset.accept });
      renderTags(data.tags);
      acc.remove();
      toast(`Tag “${acc.dataset.accept}” accepted`);
    }
    const un = ev.target.closest && ev.target.closest("[data-unlink]");
    if (un) {
      await api(`/api/assets/${un.dataset.unlink}/unlink-audio`);
      window.location.reload();
    }
  });
  const fieldsForm = $("#fields");
  if (fieldsForm) {
    fieldsForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = Object.fromEntries(new FormData(fieldsForm).entries());
      await api(`${tagBase}/fields`, body);
      toast("Fields saved");
    });
  }
  $$("[data-bin]").forEach((box) => box.addEventListener("change", async () => {
    await api(`${tagBase}/bins`, { bin: +box.dataset.bin, remove: !box.checked });
    toast(box.checked ? "Added to bin" : "Removed from bin");
  }));
  const linkSel = $("#link-audio");
  if (linkSel) {
    linkSel.addEventListener("change", async () => {
      if (!linkSel.value) return;
      await api(`${tagBase}/link-audio`, { audio_id: linkSel.value });
      window.location.reload();
    });
  }

  // ---- keyboard -----------------------------------------------------------------------
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (typing(ev)) return;
    const k = ev.key;
    if (k === "?") { toggleHelp(); ev.preventDefault(); return; }
    if (k === "Escape") {
      if (help && !help.hidden) { toggleHelp(false); return; }
      if (review && review.dataset.back) go(review.dataset.back);
      return;
    }
    const key = k.length === 1 ? k.toLowerCase() : k;
    if (grid) {
      const card = selected();
      const cs = cards();
      const i = card ? cs.indexOf(card) : -1;
      const moves = { ArrowRight: 1, j: 1, ArrowLeft: -1, k: -1, ArrowDown: columns(), ArrowUp: -columns() };
      if (key in moves) {
        ev.preventDefault();
        if (i < 0) focusCard(0);
        else if (i + moves[key] >= cs.length && key !== "ArrowDown") {
          const next = $('.pager a[rel="next"]');
          if (next) go(next.href);
        } else if (i + moves[key] < 0 && key !== "ArrowUp") {
          const prev = $('.pager a[rel="prev"]');
          if (prev) go(prev.href);
        } else focusCard(i + moves[key]);
        return;
      }
      if (card && (key === "p" || key === "x" || key === "u")) {
        ev.preventDefault();
        decideCard(card, key === "p" ? "KEEP" : key === "x" ? "REJECT" : "UNDO").catch(() => {});
        return;
      }
      return;
    }
    if (!review) return;
    switch (key) {
      case "p": ev.preventDefault(); decideHere("KEEP"); break;
      case "x": ev.preventDefault(); decideHere("REJECT"); break;
      case "u": ev.preventDefault(); decideHere("UNDO"); break;
      case "d": ev.preventDefault(); rejectDuplicate(); break;
      case "ArrowRight": case "j": ev.preventDefault(); go(review.dataset.next); break;
      case "ArrowLeft": case "k": ev.preventDefault(); go(review.dataset.prev); break;
      case " ": ev.preventDefault(); togglePlay(); break;
      case "l": ev.preventDefault(); if (player) seek(player.currentTime + (ev.shiftKey ? 1 : 5)); break;
      case "h": ev.preventDefault(); if (player) seek(player.currentTime - (ev.shiftKey ? 1 : 5)); break;
      case "a": if (useLinked && !useLinked.disabled) { useLinked.checked = !useLinked.checked; useLinked.dispatchEvent(new Event("change")); } break;
      case "t": if (tagInput) { ev.preventDefault(); tagInput.focus(); } break;
      default:
        if (/^[0-9]$/.test(key) && player && isFinite(player.duration)) {
          ev.preventDefault();
          seek((+key / 10) * player.duration);
        }
    }
  });
  // The player's own controls must not eat our shortcuts once clicked.
  if (player) player.addEventListener("keydown", (ev) => { if (ev.key === " ") ev.preventDefault(); });

  // ---- live updates (SSE) ---------------------------------------------------------------
  const live = $("[data-live]");
  if ((live || grid) && window.EventSource) {
    const es = new EventSource("/events");
    const dot = $("#live-dot");
    es.onopen = () => dot && dot.classList.add("on");
    es.onerror = () => dot && dot.classList.remove("on");
    es.addEventListener("asset", (msg) => {
      let ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (grid) {
        const card = $(`.card[data-id="${ev.uuid}"]`, grid);
        if (card) setBadge($("[data-badge]", card), ev.to);
      }
      const table = $("#transitions");
      if (table) {
        const tr = document.createElement("tr");
        tr.className = "new";
        const cells = [ev.at.replace("T", " ").slice(0, 19), ev.uuid, `${ev.from} → ${ev.to}`, ev.trigger || "", ev.by || ""];
        cells.forEach((text, idx) => {
          const td = document.createElement("td");
          if (idx === 1) { const a = document.createElement("a"); a.href = `/assets/${ev.uuid}`; a.textContent = text.slice(0, 8) + "…"; td.appendChild(a); }
          else td.textContent = text;
          tr.appendChild(td);
        });
        table.insertBefore(tr, table.firstChild);
        while (table.rows.length > 200) table.deleteRow(-1);
      }
      $$("[data-count]").forEach((b) => {
        if (b.dataset.count === ev.from) b.textContent = Math.max(0, +b.textContent - 1);
        if (b.dataset.count === ev.to) b.textContent = +b.textContent + 1;
      });
    });
  }

  // A run page polls its report until the run is over.
  const runEl = $("[data-run]");
  if (runEl) {
    const poll = async () => {
      const r = await fetch(`/actions/runs/${runEl.dataset.run}/report`, { credentials: "same-origin" });
      const data = await r.json();
      $("#run-status").textContent = data.status;
      $("#run-error").textContent = data.error || "";
      if (data.status === "running") setTimeout(poll, 1000);
      // The run is over: the server renders the full report (files from the journal).
      else if (runEl.dataset.status === "running") location.reload();
    };
    poll();
  }
})();
