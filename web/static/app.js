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

  // State names in words ("Awaiting decision"), from the server's own table (web/words.py).
  const WORDS = (() => {
    try { return JSON.parse(document.body.dataset.stateWords || "{}"); } catch (e) { return {}; }
  })();
  const word = (state) => WORDS[state] || state;
  function setBadge(el, state) {
    if (!el) return;
    el.className = el.className.replace(/\bst-[A-Z_]+/g, "").trim() + " st-" + state;
    el.dataset.state = state;
    el.title = state;
    el.textContent = word(state);
  }

  function decisionOf(state) {
    return state === "DECIDED_KEEP" ? "KEEP" : state === "DECIDED_REJECT" ? "REJECT" : null;
  }

  // ---- session-wide undo / redo ---------------------------------------------------------
  // Every decision, tag, rating and bin change made in this browser tab is an entry with
  // its before and after; Ctrl/Cmd+Z replays the before, Shift+Ctrl/Cmd+Z the after. Kept
  // in sessionStorage so it survives page changes (docs/web.md, "Undo and redo").
  const HKEY = "rc.history";
  const HMAX = 500;
  function loadH() {
    try {
      const h = JSON.parse(sessionStorage.getItem(HKEY) || "null");
      if (h && Array.isArray(h.undo) && Array.isArray(h.redo)) return h;
    } catch (e) { /* a damaged entry starts a new history */ }
    return { undo: [], redo: [] };
  }
  function saveH(h) {
    h.undo = h.undo.slice(-HMAX);
    h.redo = h.redo.slice(-HMAX);
    try { sessionStorage.setItem(HKEY, JSON.stringify(h)); } catch (e) { /* storage full: in memory only */ }
  }
  const LABELS = { KEEP: "Keep", REJECT: "Reject" };
  function describe(e) {
    const on = e.name ? ` on ${e.name}` : "";
    if (e.type === "group") return `${describe(e.entries[0]).split(" on ")[0]} on ${e.entries.length} clips`;
    if (e.type === "decision") return (e.after ? LABELS[e.after] : "Clear flag") + on;
    if (e.type === "tag") return `${e.added ? "tag" : "untag"} “${e.tag}”${on}`;
    if (e.type === "fields") return `fields${on}`;
    if (e.type === "rating") return `${e.after ? "★".repeat(e.after) : "no stars"}${on}`;
    if (e.type === "label") return `${e.after || "no"} label${on}`;
    if (e.type === "bin") return `${e.added ? "add to" : "remove from"} bin “${e.binName || e.bin}”${on}`;
    return e.type;
  }
  async function perform(e, forward) {
    if (e.type === "group") {  // a bulk action: undone and redone as one
      const parts = forward ? e.entries : [...e.entries].reverse();
      const out = [];
      for (const part of parts) out.push(await perform(part, forward));
      return { items: out };
    }
    const base = `/api/assets/${e.id}`;
    if (e.type === "decision") {
      const target = forward ? e.after : e.before;
      return target ? api(`${base}/decide`, { decision: target }) : api(`${base}/undo`);
    }
    if (e.type === "tag") {
      const add = forward === !!e.added;
      return api(`${base}/tags`, add ? { add: e.tag } : { remove: e.tag });
    }
    if (e.type === "fields") return api(`${base}/fields`, forward ? e.after : e.before);
    if (e.type === "rating") return api(`${base}/rating`, { rating: forward ? e.after : e.before });
    if (e.type === "label") return api(`${base}/label`, { label: forward ? e.after : e.before });
    if (e.type === "bin") {
      const add = forward === !!e.added;
      return api(`${base}/bins`, { bin: e.bin, remove: !add });
    }
    throw new Error(`unknown history entry ${e.type}`);
  }
  const listeners = [];
  const history = {
    /** Do a change and remember it (a change to the same value is not remembered). */
    async apply(entry) {
      const data = await perform(entry, true);
      if (entry.type !== "decision" || entry.before !== entry.after) {
        const h = loadH();
        h.undo.push(entry);
        h.redo = [];
        saveH(h);
      }
      listeners.forEach((fn) => fn(entry, "do", data));
      return data;
    },
    async undo() { return step("undo", "redo", false, "Undone"); },
    async redo() { return step("redo", "undo", true, "Redone"); },
    /** Remember a change already made (accepting a suggestion adds a tag). */
    record(entry) {
      const h = loadH();
      h.undo.push(entry);
      h.redo = [];
      saveH(h);
    },
    onChange(fn) { listeners.push(fn); },
    size() { const h = loadH(); return { undo: h.undo.length, redo: h.redo.length }; },
  };
  async function step(from, to, forward, verb) {
    const h = loadH();
    const e = h[from].pop();
    if (!e) { toast(forward ? "Nothing to redo" : "Nothing to undo"); return null; }
    saveH(h);  // popped first: a failed replay (the clip changed meanwhile) is not retried
    let data;
    try { data = await perform(e, forward); } catch (err) { return null; }
    const after = loadH();
    after[to].push(e);
    saveH(after);
    toast(`${verb}: ${describe(e)}`);
    listeners.forEach((fn) => fn(e, from, data));
    return e;
  }

  const LABEL_NAMES = ["red", "yellow", "green", "blue"];
  const RC = (window.RC = { $, $$, api, toast, typing, csrf, setBadge, decisionOf, history, toggleHelp, LABEL_NAMES, word });

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
    const name = card.dataset.name || "";
    const before = decisionOf(card.dataset.state);
    if (decision === "CLEAR" && !before) { toast("No flag to clear"); return; }
    const after = decision === "CLEAR" ? null : decision;
    const data = await RC.history.apply({ type: "decision", id, name, before, after });
    showCardState(card, data.state);
    card.classList.add(decision === "REJECT" ? "flash-reject" : "flash-keep");
    setTimeout(() => card.classList.remove("flash-keep", "flash-reject"), 400);
    if (decision !== "CLEAR") focusCard(cards().indexOf(card) + 1);
  }
  // ---- multi-select: Shift/Ctrl/Cmd-click, Shift+arrows; keys then act on every card ----
  let anchor = null;
  const picked = () => cards().filter((c) => c.classList.contains("sel"));
  function showPicked() {
    const n = picked().length, el = $("#sel-count");
    if (el) el.textContent = n > 1 ? `${n} selected · keys act on all · Esc clears` : "";
  }
  function pickRange(from, to) {
    const cs = cards(), a = cs.indexOf(from), b = cs.indexOf(to);
    if (a < 0 || b < 0) return;
    cs.forEach((c, i) => c.classList.toggle("sel", i >= Math.min(a, b) && i <= Math.max(a, b)));
    showPicked();
  }
  function clearPicked() { cards().forEach((c) => c.classList.remove("sel")); anchor = null; showPicked(); }
  if (grid) grid.addEventListener("click", (ev) => {
    const card = ev.target.closest && ev.target.closest(".card");
    if (!card || !(ev.shiftKey || ev.ctrlKey || ev.metaKey)) return;
    ev.preventDefault();
    if (ev.shiftKey && anchor) pickRange(anchor, card);
    else {
      if (!picked().length && selected() && selected() !== card) selected().classList.add("sel");
      card.classList.toggle("sel");
      anchor = card;
      showPicked();
    }
    card.focus();
  });
  async function bulk(targets, make) {
    const entries = targets.map(make).filter(Boolean);
    if (!entries.length) return;
    const data = await RC.history.apply({ type: "group", entries });
    data.items.forEach((d, i) => {
      const card = $(`.card[data-id="${entries[i].id}"]`, grid);
      if (!card || !d) return;
      if (d.state) showCardState(card, d.state);
      if (d.rating !== undefined) showCardMarks(card, d);
    });
    toast(`${entries.length} clips changed (Ctrl+Z undoes them all)`);
  }
  function bulkKey(key) {
    const targets = picked();
    if (targets.length < 2) return false;
    const base = (c) => ({ id: c.dataset.id, name: c.dataset.name || "" });
    if (key === "p" || key === "x" || key === "u") {
      const after = key === "p" ? "KEEP" : key === "x" ? "REJECT" : null;
      bulk(targets, (c) => {
        const before = decisionOf(c.dataset.state);
        return before === after ? null : { ...base(c), type: "decision", before, after };
      }).catch(() => {});
      return true;
    }
    if (/^[0-9]$/.test(key)) {
      const d = +key;
      bulk(targets, (c) => d <= 5
        ? { ...base(c), type: "rating", before: +(c.dataset.rating || 0), after: d }
        : { ...base(c), type: "label", before: c.dataset.label || "", after: LABEL_KEYS[d] },
      ).catch(() => {});
      return true;
    }
    return false;
  }

  // Keys 0-5 set the stars, 6-9 the colour label (the same key again takes it off).
  const LABEL_KEYS = { 6: "red", 7: "yellow", 8: "green", 9: "blue" };
  async function markCard(card, digit) {
    const id = card.dataset.id, name = card.dataset.name || "";
    let data;
    if (digit <= 5) {
      const before = +(card.dataset.rating || 0);
      data = await RC.history.apply({ type: "rating", id, name, before, after: digit });
    } else {
      const before = card.dataset.label || "";
      const after = before === LABEL_KEYS[digit] ? "" : LABEL_KEYS[digit];
      data = await RC.history.apply({ type: "label", id, name, before, after });
    }
    showCardMarks(card, data);
  }
  function showCardMarks(card, data) {
    card.dataset.rating = data.rating;
    card.dataset.label = data.label;
    const stars = $("[data-stars]", card), chip = $("[data-label-chip]", card);
    if (stars) stars.textContent = "★".repeat(data.rating || 0);
    if (chip) { chip.className = `lbl lbl-${data.label || "none"}`; chip.textContent = data.label; }
  }
  function showCardState(card, state) {
    card.dataset.state = state;
    setBadge($("[data-badge]", card), state);
  }
  async function refreshCard(id) {
    const card = grid && $(`.card[data-id="${id}"]`, grid);
    if (!card) return;
    const r = await fetch(`/api/review/queue?at=${id}&n=1`, { credentials: "same-origin" });
    if (!r.ok) return;
    const data = await r.json();
    const item = data.items.find((it) => it.id === id);
    if (item) { showCardState(card, item.state); showCardMarks(card, item); }
  }
  // The filter form folds on a phone: the path field, Filter, and a button for the rest.
  const toggle = $("[data-filters-toggle]");
  if (toggle) toggle.addEventListener("click", () => {
    const form = toggle.closest("form");
    form.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(form.classList.contains("open")));
  });

  // Thumbnail size and grouping (by capture day or folder) of the grid, kept in the browser.
  function groupGrid(by) {
    $$(".group", grid).forEach((h) => h.remove());
    if (!by) return;
    let last = null;
    for (const c of cards()) {
      const key = (by === "day" ? c.dataset.day : c.dataset.folder) || "—";
      if (key !== last) {
        const h = document.createElement("h3");
        h.className = "group";
        h.textContent = key;
        grid.insertBefore(h, c);
        last = key;
      }
    }
  }
  const sizeInput = $("#thumb-size"), groupSel = $("#group-by");
  if (grid && sizeInput) {
    const apply = () => grid.style.setProperty("--card-min", `${sizeInput.value}px`);
    sizeInput.value = localStorage.getItem("rc.thumb") || sizeInput.value;
    apply();
    sizeInput.addEventListener("input", () => { localStorage.setItem("rc.thumb", sizeInput.value); apply(); });
  }
  if (grid && groupSel) {
    groupSel.value = localStorage.getItem("rc.group") || "";
    groupGrid(groupSel.value);
    groupSel.addEventListener("change", () => { localStorage.setItem("rc.group", groupSel.value); groupGrid(groupSel.value); groupSel.blur(); });
  }
  if (grid) {
    // A new filter starts a new review queue: clips kept for another filter are forgotten.
    for (const key of Object.keys(sessionStorage)) {
      if (key.startsWith("rc.sticky:") && key !== "rc.sticky:" + (grid.dataset.qs || "")) sessionStorage.removeItem(key);
    }
    const first = cards()[0];
    if (first && !typing({ target: document.activeElement })) first.focus();
  }

  function go(url) { if (url) window.location.href = url; }

  // ---- keyboard (library grid; the asset page has its own, in review.js) -------------
  document.addEventListener("keydown", (ev) => {
    if (typing(ev)) return;
    const k = ev.key;
    if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && (k === "z" || k === "Z" || k === "y")) {
      // Session-wide undo / redo (decisions, tags, ratings, bins), on every page.
      ev.preventDefault();
      const redo = k === "y" || ev.shiftKey;
      (redo ? RC.history.redo() : RC.history.undo()).then((done) => {
        if (done && grid) refreshCard(done.id);
      });
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (k === "?") { toggleHelp(); ev.preventDefault(); return; }
    if (k === "Escape" && help && !help.hidden) { toggleHelp(false); ev.preventDefault(); return; }
    if (!grid) return;
    const key = k.length === 1 ? k.toLowerCase() : k;
    const card = selected();
    const cs = cards();
    const i = card ? cs.indexOf(card) : -1;
    const moves = { ArrowRight: 1, j: 1, ArrowLeft: -1, k: -1, ArrowDown: columns(), ArrowUp: -columns() };
    if (key === "Escape" && picked().length) { ev.preventDefault(); clearPicked(); return; }
    if (card && !ev.shiftKey && (/^[0-9]$/.test(key) || ["p", "x", "u"].includes(key)) && bulkKey(key)) {
      ev.preventDefault();
      return;
    }
    if (key in moves && ev.shiftKey && card && i >= 0) {
      ev.preventDefault();
      if (!anchor) anchor = card;
      focusCard(i + moves[key]);
      pickRange(anchor, selected());
      return;
    }
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
    if (card && /^[0-9]$/.test(key) && !ev.shiftKey) {
      ev.preventDefault();
      markCard(card, +key).catch(() => {});
      return;
    }
    if (card && (key === "p" || key === "x" || key === "u")) {
      ev.preventDefault();
      decideCard(card, key === "p" ? "KEEP" : key === "x" ? "REJECT" : "CLEAR").catch(() => {});
    }
  });

  // ---- live updates (SSE) ---------------------------------------------------------------
  // File names for live rows, asked in batches (a batch apply moves hundreds at once).
  const names = {};
  let wanted = new Set(), nameTimer = null;
  function nameLater(id) {
    if (names[id]) return;
    wanted.add(id);
    if (nameTimer) return;
    nameTimer = setTimeout(async () => {
      const ids = Array.from(wanted).slice(0, 200);
      wanted = new Set(Array.from(wanted).slice(200));
      nameTimer = null;
      try {
        const r = await fetch(`/api/assets/names?ids=${ids.join(",")}`, { credentials: "same-origin" });
        Object.assign(names, await r.json());
      } catch (e) { return; }
      $$("[data-name-of]").forEach((a) => { if (names[a.dataset.nameOf]) a.textContent = names[a.dataset.nameOf]; });
      if (wanted.size) nameLater(wanted.values().next().value);
    }, 150);
  }
  const live = $("[data-live]");
  if ((live || grid || $("#review")) && window.EventSource) {
    const es = new EventSource("/events");
    const dot = $("#live-dot");
    es.onopen = () => dot && dot.classList.add("on");
    es.onerror = () => dot && dot.classList.remove("on");
    es.addEventListener("asset", (msg) => {
      let ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (grid) {
        const card = $(`.card[data-id="${ev.uuid}"]`, grid);
        if (card) { card.dataset.state = ev.to; setBadge($("[data-badge]", card), ev.to); }
      }
      if (RC.onAssetEvent) RC.onAssetEvent(ev);
      const table = $("#transitions");
      if (table) {
        const tr = document.createElement("tr");
        tr.className = "new";
        const cells = [ev.at.replace("T", " ").slice(0, 19), ev.uuid, `${word(ev.from)} → ${word(ev.to)}`, ev.trigger || "", ev.by || ""];
        cells.forEach((text, idx) => {
          const td = document.createElement("td");
          if (idx === 1) {
            const a = document.createElement("a");
            a.href = `/assets/${ev.uuid}`;
            a.textContent = names[ev.uuid] || "…";
            a.dataset.nameOf = ev.uuid;
            td.appendChild(a);
            nameLater(ev.uuid);
          } else td.textContent = text;
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
