// mmtrans review page: plain JavaScript over the JSON API in mmtrans/review/app.py.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token") || sessionStorage.getItem("mmtrans-token") || "";
if (token) sessionStorage.setItem("mmtrans-token", token);
//: How often the page asks what changed (another annotator, a running translate).
const POLL_MS = Number(params.get("poll")) || 2000;

const state = {
  annotator: null, config: {}, entries: [], index: 0, view: null, progress: null, stamp: null,
  // rows: the editor's mentions; armed: the row the next selection in the text sets (a
  // missing one at first; another once chosen), so selecting text to retype it moves none.
  editing: false, conflict: null, checkTimer: null, rows: [], armed: null,
  applied: {}, offline: false,  // the filters the queue was read with; the server is gone
  // The queue is read a page at a time: `entries` is the page held, `total` how many records
  // the filters keep in all, `anchor` the cursor the page was read after.
  total: 0, moreBefore: false, moreAfter: false, anchor: null,
};

async function api(path, body) {
  const headers = { "content-type": "application/json" };
  // Percent-encoded: a header holds Latin-1 only, and a token may hold any character.
  if (token) headers.authorization = `Bearer ${encodeURIComponent(token)}`;
  let response;
  try {
    response = await fetch(path, body === undefined ? { headers } :
      { method: "POST", headers, body: JSON.stringify(body) });
  } catch {
    // Nothing reached the server: say so (a decision was not saved; an open edit stays).
    state.offline = true;
    return { status: 0, data: { error: "the review server does not answer: nothing was saved; try again when it is back" } };
  }
  const data = await response.json().catch(() => ({}));
  if (state.offline) { state.offline = false; say("the review server answers again"); }
  return { status: response.status, data };
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

const hue = (i) => (i * 137) % 360;
const htmlLang = (code) => ({ zh: "zh-Hans" }[code] || code);
const same = (e, run, id) => e.run_id === run && e.id === id;

// The store's offsets count code points (Python); a JavaScript string counts UTF-16 units,
// two for 𠮷 or an emoji. Map each code-point offset to its UTF-16 index, and back.
function utf16Offsets(text) {
  const at = [0];
  for (const ch of text) at.push(at[at.length - 1] + ch.length);
  return at;
}
const codePoints = (text, utf16) => [...text.slice(0, utf16)].length;

// Text with every located mention highlighted, the label after it. `colours[i]` is the
// colour of mention i (its source mention's), null for one the source does not have.
function highlight(text, mentions, colours) {
  const at = utf16Offsets(text);
  const spans = mentions.map((m, i) => ({ ...m, i, c: colours ? colours[i] : i }))
    .filter((m) => m.start !== null && m.start !== undefined && m.end > m.start)
    .map((m) => ({ ...m, start: at[m.start], end: at[m.end] }))
    .filter((m) => m.start !== undefined && m.end !== undefined);
  const cuts = new Set([0, text.length]);
  spans.forEach((m) => { cuts.add(m.start); cuts.add(m.end); });
  const points = [...cuts].sort((a, b) => a - b);
  const style = (m) => (m.c === null ? 'class="m added"' : `class="m" style="--h:${hue(m.c)}"`);
  let html = "";
  for (let k = 0; k < points.length - 1; k++) {
    const [from, to] = [points[k], points[k + 1]];
    const covering = spans.filter((m) => m.start <= from && m.end >= to)
      .sort((a, b) => (a.end - a.start) - (b.end - b.start));
    const piece = escapeHtml(text.slice(from, to));
    html += covering.length
      ? `<mark ${style(covering[0])} data-mention="${covering[0].i}" title="${escapeHtml(covering[0].label)}">${piece}</mark>`
      : piece;
    spans.filter((m) => m.end === to).sort((a, b) => b.start - a.start).forEach((m) => {
      html += `<span class="tag" style="--h:${m.c === null ? 0 : hue(m.c)}">${escapeHtml(m.label)}</span>`;
    });
  }
  return html;
}

function say(text, error = false) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}

function problemList(problems) {
  if (!problems.length) return '<p class="ok">All checks pass.</p>';
  return "<ul>" + problems.map((p) =>
    `<li><b>${escapeHtml(p.code)}</b>${p.where ? ` (${escapeHtml(p.where)})` : ""}: ${escapeHtml(p.message)}</li>`).join("") + "</ul>";
}

// -- the queue ---------------------------------------------------------------------------

function filters() {
  return { code: $("filter-code").value, dataset: $("filter-dataset").value, status: $("filter-status").value,
           q: $("filter-q").value.trim(), by: $("filter-annotator").value,
           mine: $("filter-mine").checked ? "1" : "", annotator: state.annotator || "" };
}

// An entry's place in the queue's order, as the server pages by it; `at` is the cursor a
// page starting at the entry is read after.
const cursorOf = (e) => `${e.status === "accepted" ? 1 : 0},${e.run_id},${e.position}`;
const cursorAt = (e) => `${e.status === "accepted" ? 1 : 0},${e.run_id},${e.position - 1}`;

// One page of the queue, filtered on the server: the first page, or the one after or before
// a cursor (`{after}` / `{before}`). The page never holds the whole queue.
async function loadQueue(where = {}) {
  state.applied = filters();
  const query = Object.fromEntries(Object.entries({ ...state.applied, ...where }).filter(([, v]) => v));
  const { status, data } = await api(`/api/queue?${new URLSearchParams(query)}`);
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  state.entries = data.entries || [];
  state.total = data.total || 0;
  state.moreThanTotal = Boolean(data.more_than_total);  // a search counted this far, no further
  state.moreBefore = Boolean(data.more_before);
  state.moreAfter = Boolean(data.more_after);
  state.anchor = state.entries.length ? cursorAt(state.entries[0]) : null;
  state.stamp = data.stamp;
  state.progress = data.progress;
  renderTeamProgress(data.annotator_progress);
  fillSelect($("filter-code"), data.codes || []);
  fillSelect($("filter-dataset"), data.datasets || []);
  fillSelect($("filter-annotator"), data.annotators || []);
  renderProgress();
  renderQueue();
}

// The page read again from where it starts (a record joined it, or many changed).
const reloadPage = () => loadQueue(state.anchor ? { after: state.anchor } : {});

function renderProgress() {
  const p = state.progress;
  if (!p) return;
  const who = Object.entries(p.by_annotator).map(([name, n]) => `${escapeHtml(name)}: ${n}`).join(", ");
  const filtered = Object.values(state.applied).some((v) => v);
  $("progress").innerHTML = `reviewed <b id="reviewed">${p.reviewed}</b> / <b id="in-queue">${p.in_queue}</b>` +
    (filtered ? `, <b id="matching">${state.moreThanTotal ? "over " : ""}${state.total}</b> match` : "") + (who ? ` (${who})` : "");
  $("progress").title = $("progress").textContent;
}

async function loadAgreement() {
  const { status, data } = await api("/api/agreement");
  if (status !== 200) return;
  const k = (x) => (x === null ? "n/a" : x.toFixed(2));
  $("agreement").innerHTML = (data.pairs || []).filter((p) => p.records > 0).map((p) =>
    `<span class="pair-agreement">${escapeHtml(p.a)} / ${escapeHtml(p.b)}: ` +
    `agreement ${k(p.agreement)}, κ ${k(p.kappa)} (${p.records})</span>`).join(" ");
}

function fillSelect(select, values) {
  const current = select.value;
  const known = new Set([...select.options].map((o) => o.value));
  values.filter((v) => !known.has(v)).forEach((v) => select.add(new Option(v, v)));
  select.value = current;
}

function entryHtml(e, i) {
  const current = i === state.index;
  return `<li data-index="${i}" tabindex="0"${current ? ' class="current" aria-current="true"' : ""}>${escapeHtml(e.id)}
      <span class="state state-${e.state.replace(" ", "-")}">${escapeHtml(e.state)}${e.disagreement ? ' <b class="disagree" title="annotators disagree">≠</b>' : ""}${teamBadge(e)}</span><br>
      <span class="muted">${escapeHtml(e.codes.join(", ") || e.status)}</span></li>`;
}

function renderQueue() {
  $("queue-list").innerHTML = state.entries.map(entryHtml).join("");
  markCurrent();
}

// Moving through the queue touches two items, never the whole list (10,000 records).
function markCurrent() {
  const list = $("queue-list");
  const old = list.querySelector("li.current");
  if (old) { old.classList.remove("current"); old.removeAttribute("aria-current"); }
  const li = list.children[state.index];
  if (li) { li.classList.add("current"); li.setAttribute("aria-current", "true"); revealInQueue(li); }
}

// Scroll the queue's own list to show an item, never the page (scrollIntoView scrolls every
// ancestor too: on a phone, the record scrolled away under the finger).
function revealInQueue(li) {
  const box = $("queue");
  const top = li.offsetTop;
  if (top < box.scrollTop) box.scrollTop = top;
  else if (top + li.offsetHeight > box.scrollTop + box.clientHeight) box.scrollTop = top + li.offsetHeight - box.clientHeight;
}

// A record opened anew starts at its top, its actions in view.
function toTop() {
  for (const el of [$("record"), document.querySelector("main"), document.scrollingElement]) if (el) el.scrollTop = 0;
}

// One record's entry changed (a decision here or elsewhere): patch it and the progress.
function patchEntry(entry) {
  if (!entry) return;
  const i = state.entries.findIndex((e) => same(e, entry.run_id, entry.id));
  if (i < 0) return;
  const before = state.entries[i];
  if (state.progress) state.progress.reviewed += (entry.state !== "to review") - (before.state !== "to review");
  state.entries[i] = entry;
  const li = $("queue-list").children[i];
  if (li) {
    const tmp = document.createElement("template");
    tmp.innerHTML = entryHtml(entry, i);
    li.replaceWith(tmp.content.firstElementChild);
  }
}

const recordPath = (e) => `/api/record?run=${encodeURIComponent(e.run_id)}&id=${encodeURIComponent(e.id)}${viewerParam()}`;

// `ready`: the record's view already asked for ({entry, answer}), while a decision was saved.
async function show(index, ready = null) {
  if (state.editing && state.entries[index] !== state.entries[state.index]) {
    // The editor holds this record's text: moving on would save it onto another one.
    editFirst(); return;
  }
  if (index >= state.entries.length && state.moreAfter && state.entries.length) {
    await loadQueue({ after: cursorOf(state.entries[state.entries.length - 1]) }); index = 0;
  } else if (index < 0 && state.moreBefore && state.entries.length) {
    await loadQueue({ before: cursorOf(state.entries[0]) }); index = state.entries.length - 1;
  }
  if (!state.entries.length) {
    $("empty").hidden = false; $("view").hidden = true; state.view = null; return;
  }
  state.index = Math.max(0, Math.min(index, state.entries.length - 1));
  const entry = state.entries[state.index];
  markCurrent();
  const { status, data } = await (ready && ready.entry === entry ? ready.answer : api(recordPath(entry)));
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  const moved = !state.view || !same(entry, state.view.run_id, state.view.id);
  state.view = data;
  render();
  if (moved) toTop();
}

// -- fidelity: the part a fidelity problem speaks of, marked in its text -----------------

// A problem may carry `span` {side: "source" | "target", start, end} in code points of that
// text (a sentence the translation added, a source clause it dropped). Its characters are
// wrapped in <span class="drift">, around the mention marks and never in a label tag.
function markDrift(element, spans) {
  if (!spans.length) return;
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (n.parentElement.closest(".tag") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) nodes.push(n);
  let at = 0;
  nodes.forEach((node) => {
    const chars = [...node.data];
    const from = at;
    at += chars.length;
    const marked = chars.map((_, i) => spans.some((s) => s.start <= from + i && from + i < s.end));
    if (!marked.some(Boolean)) return;
    const pieces = document.createDocumentFragment();
    for (let k = 0; k < chars.length;) {
      let j = k;
      while (j < chars.length && marked[j] === marked[k]) j++;
      const text = document.createTextNode(chars.slice(k, j).join(""));
      if (marked[k]) {
        const drift = document.createElement("span");
        drift.className = "drift";
        drift.title = "fidelity: see Problems";
        drift.appendChild(text);
        pieces.appendChild(drift);
      } else pieces.appendChild(text);
      k = j;
    }
    node.replaceWith(pieces);
  });
}

function markDrifts(v) {
  const on = (side) => v.problems.filter((p) => p.code === "fidelity" && p.span && p.span.side === side).map((p) => p.span);
  markDrift($("source-text"), on("source"));
  if (v.target) markDrift($("target-text"), on("target"));
}

// -- one record --------------------------------------------------------------------------

// For each target mention, the index of its source mention (its colour), null if added.
function targetColours(v) {
  const colours = v.target ? v.target.mentions.map(() => null) : [];
  v.pairs.forEach((p) => { if (p.target !== null && p.source !== null) colours[p.target] = p.source; });
  return colours;
}

function render() {
  const v = state.view;
  $("empty").hidden = true; $("view").hidden = false;
  const target = v.target;
  $("meta").innerHTML = `<span class="badge">${escapeHtml(v.dataset)}</span><span class="badge">${escapeHtml(v.id)}</span>` +
    `<span class="badge">model: ${escapeHtml(v.status)}</span><span class="badge" id="review-state">review: ${escapeHtml(v.state)}</span>` +
    (v.disagreement ? '<span class="badge bad" id="disagreement">annotators disagree</span>' : "") +
    `<span class="badge">text label: ${escapeHtml(v.source.label || "—")} → ${escapeHtml((target && target.label) || v.expected_label || "—")}</span>`;
  $("src-lang").textContent = v.src;
  $("tgt-lang").textContent = v.version && v.version !== "translation" ? `${v.tgt}, ${v.version}` : v.tgt;
  // Glyph shapes follow the language: Chinese drawn with Japanese fonts looks wrong.
  $("source-text").lang = htmlLang(v.src); $("target-text").lang = htmlLang(v.tgt);
  $("source-text").innerHTML = Structures.highlighted(v, "source", v.source.mentions);
  $("target-text").innerHTML = target ? Structures.highlighted(v, "target", target.mentions, targetColours(v)) : '<span class="muted">no usable translation</span>';
  markDrifts(v);
  // One row per source mention with the translated mention paired to it (missing where the
  // translation dropped it), then any the translation added.
  const rows = v.pairs.map((p) => {
    const m = p.source !== null ? v.source.mentions[p.source] : null;
    const t = p.target !== null && target ? target.mentions[p.target] : null;
    const swatch = m ? `<span class="swatch" style="--h:${hue(p.source)}"></span> ${p.source + 1}` : '<span class="swatch added"></span> +';
    const expected = m ? v.expected_labels[p.source] : null;
    // A relabelled mention is one row: its label as the source has it, as expected, as given.
    const label = m ? (t && t.label !== expected
      ? `${escapeHtml(m.label)} → <b class="relabelled">${escapeHtml(t.label)}</b> <span class="muted">(expected ${escapeHtml(expected)})</span>`
      : `${escapeHtml(m.label)} → ${escapeHtml(expected || "")}`) : escapeHtml(t.label);
    return `<tr><td>${swatch}</td><td>${label}</td><td>${m ? escapeHtml(m.text) : '<span class="muted">not in the source</span>'}</td>` +
      `<td>${t ? escapeHtml(t.text) : '<span class="missing">missing</span>'}</td>` +
      `<td>${p.target !== null ? Structures.problemsOf(v.problems, `mentions[${p.target}]`) : ""}</td></tr>`;
  });
  $("mentions").querySelector("tbody").innerHTML = rows.join("");
  $("mentions").hidden = !rows.length && Structures.has(v);
  Structures.render(v, rows.length);
  $("problems").innerHTML = v.problems.length ? "<h2>Problems</h2>" + problemList(v.problems) : "";
  $("decisions").innerHTML = v.reviews.map((r) =>
    `${escapeHtml(r.annotator)}: ${escapeHtml(r.decision)}${r.reason ? ` (${escapeHtml(r.reason)})` : ""}${r.adjudicated ? " [adjudicated]" : ""} at ${escapeHtml(r.created)}`).join("<br>");
  $("raw-text").textContent = v.raw || "(none)";
  renderVotes();
  renderTeam();
}

// Adjudication: every annotator's version side by side, each one pickable.
function renderVotes() {
  const v = state.view;
  $("votes").hidden = !state.config.adjudicate;
  if (!state.config.adjudicate) return;
  $("votes-list").innerHTML = v.votes.map((vote, i) => {
    const text = vote.record ? highlight(vote.record.text, vote.record.mentions) : '<span class="muted">no text</span>';
    return `<li><b>${escapeHtml(vote.annotator)}</b>: ${escapeHtml(vote.decision)}${vote.reason ? ` (${escapeHtml(vote.reason)})` : ""}` +
      `<p class="text" lang="${htmlLang(v.tgt)}">${vote.decision === "reject" ? '<span class="muted">rejected</span>' : text}</p>` +
      `<button type="button" class="pick" data-vote="${i}">Take this version (${i + 1})</button>` +
      (vote.record && vote.decision !== "reject" ? ` <button type="button" class="edit-version" data-vote="${i}">Edit this version</button>` : "") + "</li>";
  }).join("") || '<li class="muted">No decisions yet.</li>';
}

async function pick(i) {
  const vote = state.view && state.view.votes[i];
  if (!vote) return;
  // The version shown is the version kept: an accepted one is saved as that record.
  if (vote.decision !== "reject" && vote.record) await decide("edit", vote.record, false, undefined, vote.reason || undefined);
  else await decide(vote.decision, undefined, false, vote.reason);
}

// -- deciding ----------------------------------------------------------------------------

async function decide(decision, record, force = false, reason = undefined, override = undefined) {
  const v = state.view;
  if (!v) return;
  if (decision !== "edit" && state.editing) { editFirst(); return; }
  // The next record is read while the decision is saved: moving on waits for one of them.
  const following = state.entries[state.index + 1];
  const ready = following ? { entry: following, answer: api(recordPath(following)) } : null;
  const body = { run: v.run_id, id: v.id, annotator: state.annotator, decision, seen: v.seen, force };
  if (record) body.record = record;
  if (state.config.adjudicate) body.adjudicate = true;
  if (reason) body.reason = reason;
  if (pendingComment()) body.comment = pendingComment();
  if (decision === "reject" && state.config.reasons.length && !state.config.reasons.includes(reason)) {
    body.reason = await ask({ title: "Why reject it?", text: `Reject ${v.id}: pick a reason.`, choices: state.config.reasons });
    if (!body.reason) { say("reject not saved: no reason picked", true); return; }
  }
  let { status, data } = await api("/api/decision", body);
  if (status === 422 && data.error === "needs_reason") {
    // Keeping a record with open problems is a second, explicit choice, with a reason.
    const codes = [...new Set(data.problems.map((p) => p.code))].join(", ");
    const why = override || await ask({ title: "Keep it with its problems?", free: true,
      text: `This record still has problems (${codes}). Say why you keep it: it is exported only when the export is asked to include records kept with problems.` });
    if (!why) { say(`${decision} not saved: it still has problems (${codes})`, true); return; }
    ({ status, data } = await api("/api/decision", { ...body, override: why }));
  }
  if (status === 409) {
    state.conflict = { decision, record, reason: body.reason, override: body.override };
    const t = data.theirs;
    $("conflict-text").textContent = t
      ? `${t.annotator} already chose "${t.decision}" at ${t.created}. Your choice: "${decision}".`
      : `The record's review history changed. Your choice: "${decision}".`;
    $("conflict").hidden = false;
    state.view.seen = data.seen;
    $("conflict-mine").focus();
    return;
  }
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  say(`${decision} saved for ${v.id}`);
  closeEditor();
  applyChange(data);
  await show(state.index + 1, ready);
}

// Saving the open edit. A second press queued behind the first (a double click, Ctrl+Enter
// twice) finds the editor closed and the page on the next record: it saves nothing.
function saveEdit() {
  if (state.editing) return decide("edit", editedRecord());
}

// The editor holds one record's text: moving to another record or deciding otherwise waits.
function editFirst() { say("save (Ctrl+Enter) or cancel (Esc) the edit first", true); }

// A decision or undo answered: patch the record's entry and the progress, not the queue.
function applyChange(data) {
  patchEntry(data.entry);
  if (state.progress && data.by_annotator) { state.progress.by_annotator = data.by_annotator; renderProgress(); }
}

async function undo() {
  // The server knows each annotator's decisions: `u` walks back through them, one per
  // press, also after a reload.
  const { status, data } = await api("/api/undo", { annotator: state.annotator });
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  say(`undid your decision on ${data.id}`);
  applyChange(data);
  const index = state.entries.findIndex((e) => same(e, data.run, data.id));
  await show(index >= 0 ? index : state.index);
}

async function resolveConflict(mine) {
  $("conflict").hidden = true;
  const c = state.conflict;
  if (mine) { await decide(c.decision, c.record, true, c.reason, c.override); return; }
  closeEditor(); say("kept their decision");
  await show(state.index);
}

// -- a dialog that asks for a reason -------------------------------------------------------

let answer = null;  // resolves the open question

function ask({ title, text, choices = [], free = false }) {
  $("ask-title").textContent = title;
  $("ask-text").textContent = text;
  const box = $("ask-choices");
  box.hidden = !choices.length;
  box.querySelectorAll("label").forEach((l) => l.remove());
  choices.forEach((c, i) => {
    const label = document.createElement("label");
    label.innerHTML = `<input type="radio" name="ask-choice" value="${escapeHtml(c)}"${i === 0 ? " checked" : ""}> <b>${i + 1}</b> ${escapeHtml(c)}`;
    box.append(label);
  });
  $("ask-free-label").hidden = !free;
  $("ask-free").value = "";
  openOverlay("ask", free ? $("ask-free") : box.querySelector("input"));
  return new Promise((resolve) => { answer = resolve; });
}

function closeAsk(value) {
  closeOverlay("ask");
  if (answer) { const resolve = answer; answer = null; resolve(value); }
}

$("ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (!$("ask-free-label").hidden) {
    const why = $("ask-free").value.trim();
    if (!why) { $("ask-free").focus(); return; }
    closeAsk(why);
  } else {
    const chosen = $("ask-choices").querySelector("input:checked");
    closeAsk(chosen ? chosen.value : null);
  }
});
$("ask-cancel").addEventListener("click", () => closeAsk(null));
$("ask").addEventListener("keydown", (e) => {
  if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); closeAsk(null); return; }
  const n = Number(e.key);
  const inputs = $("ask-choices").querySelectorAll("input");
  if (!$("ask-choices").hidden && n >= 1 && n <= inputs.length) {
    e.preventDefault(); e.stopPropagation(); closeAsk(inputs[n - 1].value);
  }
});

// -- editing -----------------------------------------------------------------------------

// The editor's mention rows: one per pair (a missing mention is an empty row to fill by
// selecting its string), each with the source mention it renders.
function openEditor() {
  const v = state.view;
  if (!v) return;
  const target = v.target || { text: "", label: v.expected_label, mentions: [] };
  state.rows = v.pairs.map((p) => {
    const t = p.target !== null ? target.mentions[p.target] : null;
    return {
      source: p.source, target: p.target, label: t ? t.label : v.expected_labels[p.source],
      text: t ? t.text : "", start: t ? t.start : null, end: t ? t.end : null,
    };
  });
  // The first row to fix takes the first selection: a missing string, or one with a problem.
  const broken = (r) => r.target !== null && v.problems.some((q) => q.where === `mentions[${r.target}]`);
  const missing = state.rows.findIndex((r) => !r.text || broken(r));
  state.armed = missing >= 0 ? missing : null;
  state.editing = true;
  $("editor").hidden = false;
  $("edit-text").value = target.text;
  Structures.open(v);
  $("edit-text").lang = htmlLang(v.tgt);
  renderRows();
  $("edit-text").focus();
  scheduleCheck();
}

function labelOptions(current) {
  const labels = state.view.labels.includes(current) || !current ? state.view.labels : [current, ...state.view.labels];
  // A mention added from a selection has no label until one of the run's is chosen.
  return (current ? "" : '<option value="">choose a label</option>') +
    labels.map((l) => `<option${l === current ? " selected" : ""}>${escapeHtml(l)}</option>`).join("");
}

function renderRows() {
  $("edit-mentions").innerHTML = state.rows.map((r, i) => {
    const swatch = r.source === null ? '<span class="swatch added"></span>' : `<span class="swatch" style="--h:${hue(r.source)}"></span>`;
    const where = r.start === null || r.start === undefined ? "not placed" : `${r.start}–${r.end}`;
    const source = r.source === null ? "added" : escapeHtml(state.view.source.mentions[r.source].text);
    const armed = i === state.armed;
    return `<div class="mention-edit${armed ? " armed" : ""}" data-row="${i}">` +
      `${swatch}<b class="row-number">${i + 1}</b><select class="edit-mention-label" aria-label="label ${i + 1}">${labelOptions(r.label)}</select>` +
      `<input class="edit-mention-text" aria-label="string ${i + 1}" value="${escapeHtml(r.text)}" placeholder="select it in the text">` +
      `<span class="muted offsets" title="offsets in the text">${where}</span>` +
      `<span class="muted source-string" title="source string">${source}</span>` +
      `<button type="button" class="edit-mention-arm" aria-pressed="${armed}" title="the next selection in the text becomes this string">${armed ? "selecting…" : "Select in text"}</button>` +
      `<button type="button" class="edit-mention-delete" aria-label="delete mention ${i + 1}">×</button></div>`;
  }).join("");
}

function closeEditor() {
  if ($("editor").contains(document.activeElement)) document.activeElement.blur();
  state.editing = false;
  $("editor").hidden = true;
  $("edit-check").innerHTML = "";
}

// The text's current selection, in code points, or null when nothing is selected.
function selection() {
  const area = $("edit-text");
  const [from, to] = [area.selectionStart, area.selectionEnd];
  if (to <= from) return null;
  // Spaces and punctuation at the edges are left out; a piece of a word grows to the word.
  const snap = snapSelection(area.value, from, to, Boolean(state.view && state.view.spaced));
  if (!snap) return null;
  if (snap.snapped) say(`"${area.value.slice(from, to).trim()}" is part of the word "${snap.text}": the whole word is taken`);
  const start = codePoints(area.value, snap.from);
  return { text: snap.text, start, end: start + [...snap.text].length };
}

function setFromSelection() {
  const picked = selection();
  if (picked && Structures.take(picked)) return;
  if (!picked || state.armed === null || !state.rows[state.armed]) return;
  Object.assign(state.rows[state.armed], picked);
  state.armed = null;
  renderRows();
  scheduleCheck();
}

function addMention() {
  const picked = selection();
  const label = "";  // asked: the new row's label list is focused, with no label chosen
  Structures.disarm();
  state.rows.push({ source: null, label, text: picked ? picked.text : "", start: picked ? picked.start : null, end: picked ? picked.end : null });
  state.armed = picked ? null : state.rows.length - 1;
  renderRows();
  scheduleCheck();
  const select = $("edit-mentions").querySelector(`[data-row="${state.rows.length - 1}"] .edit-mention-label`);
  if (select) { select.focus(); say("choose the new mention's label from the list"); }
}

// A changed text moves strings: offsets that no longer hold their string are dropped (the
// checks find the string again).
function textChanged() {
  const text = $("edit-text").value;
  const at = utf16Offsets(text);
  state.rows.forEach((r) => {
    if (r.start !== null && r.start !== undefined && text.slice(at[r.start], at[r.end]) !== r.text) { r.start = null; r.end = null; }
  });
  renderRows();
  Structures.textChanged(text);
}

function editedRecord() {
  return {
    text: $("edit-text").value, label: $("edit-label").value || null,
    mentions: state.rows.filter((r) => r.text.trim())
      .map((r) => ({ label: r.label, text: r.text, start: r.start, end: r.end })),
    ...Structures.edited(),
  };
}

function scheduleCheck() {
  clearTimeout(state.checkTimer);
  state.checkTimer = setTimeout(runCheck, 150);
}

async function runCheck() {
  const v = state.view;
  if (!state.editing) return;
  const { status, data } = await api("/api/check", { run: v.run_id, id: v.id, record: editedRecord() });
  if (!state.editing || state.view !== v) return;  // closed, or another record, meanwhile
  if (status !== 200) {
    $("edit-check").innerHTML = `<ul><li>${escapeHtml(data.error || `error ${status}`)}</li></ul>`;
    return;
  }
  $("edit-check").innerHTML = problemList(data.problems);
  const kept = state.rows.filter((r) => r.text.trim());
  if (!Structures.checked(data, kept.map((r) => r.source)))
    $("target-text").innerHTML = highlight(data.record.text, data.record.mentions, kept.map((r) => r.source));
}

$("edit-text").addEventListener("input", () => { textChanged(); scheduleCheck(); });
// A selection is taken once it is finished: mouse or finger up, or Shift let go (the
// `select` event fires on every Shift+Arrow, and would take the first character).
// A touch selection is taken when it settles, and follows the handles after (structures.js).
const touchSelection = followTouchSelection($("edit-text"), takeTouchSelection);
$("edit-text").addEventListener("mouseup", (e) => {
  if (!(e.sourceCapabilities && e.sourceCapabilities.firesTouchEvents)) setFromSelection();
});
Structures.wire();
$("edit-text").addEventListener("keyup", (e) => { if (!e.shiftKey) setFromSelection(); });
$("edit-label").addEventListener("input", scheduleCheck);
$("edit-mentions").addEventListener("input", (e) => {
  const row = e.target.closest("[data-row]");
  if (!row) return;
  const r = state.rows[Number(row.dataset.row)];
  if (e.target.matches(".edit-mention-text")) { r.text = e.target.value; r.start = null; r.end = null; }
  if (e.target.matches(".edit-mention-label")) r.label = e.target.value;
  scheduleCheck();
});
$("edit-mentions").addEventListener("click", (e) => {
  const row = e.target.closest("[data-row]");
  if (!row) return;
  const i = Number(row.dataset.row);
  if (e.target.matches(".edit-mention-delete")) {
    state.rows.splice(i, 1);
    state.armed = null;
    renderRows(); scheduleCheck();
  } else if (e.target.matches(".edit-mention-arm")) {
    // Arming a row: the next selection in the text becomes its string (pressed again: not).
    state.armed = state.armed === i ? null : i;
    if (state.armed !== null) Structures.disarm();
    renderRows();
    if (state.armed !== null) $("edit-text").focus();
  }
});
$("edit-add").addEventListener("click", addMention);
$("edit-save").addEventListener("click", () => queueAction(saveEdit));
$("edit-cancel").addEventListener("click", () => { closeEditor(); render(); });

// -- live view ---------------------------------------------------------------------------

// Another annotator decided, or a running translate stored answers: patch what changed (the
// queue is read anew only when a record joins it, or many changed at once). An open edit is
// never touched; saving it then asks about the other decision (409).
async function poll() {
  if (!state.stamp || document.hidden) return;
  const { status, data } = await api(`/api/changes?since=${state.stamp.join(",")}${viewerParam()}`);
  if (status !== 200) return;
  // A record another annotator decided outside this page changes nothing here; a record
  // that joins the queue (a new translation, undecided) may fall inside it.
  const joins = (e) => e.status !== "accepted" && e.state === "to review" && !state.entries.some((x) => same(x, e.run_id, e.id));
  if (data.reload || data.entries.some(joins)) {
    const current = state.entries[state.index];
    await reloadPage();
    const i = current ? state.entries.findIndex((e) => same(e, current.run_id, current.id)) : -1;
    if (i >= 0) state.index = i;
    markCurrent();
  } else {
    state.stamp = data.stamp;
    data.entries.forEach(patchEntry);
    if (data.by_annotator && state.progress) { state.progress.by_annotator = data.by_annotator; renderProgress(); }
  }
  if (data.decided) loadAgreement();
  const v = state.view;
  if (!v || !(data.reload || data.entries.some((e) => same(e, v.run_id, v.id)))) return;
  if (state.editing) { say(`${v.id} changed while you edit (a decision or a new translation): your edit is kept; saving asks first if someone decided`, true); return; }
  await show(state.index);
}

// -- keys --------------------------------------------------------------------------------

// A dialog takes the focus when it opens and gives it back to what had it when it closes.
// Hidden, it must not keep it: Chrome moves the focus off a hidden element only at its next
// frame, and a key pressed before that reached the dialog's (hidden) input and was lost.
const openers = {};

function openOverlay(overlay, focus) {
  if ($(overlay).hidden) openers[overlay] = document.activeElement;
  $(overlay).hidden = false;
  focus.focus();
}

function closeOverlay(overlay) {
  $(overlay).hidden = true;
  const opener = openers[overlay];
  delete openers[overlay];
  if (!$(overlay).contains(document.activeElement)) return;
  if (opener && opener !== document.body && opener.isConnected && !opener.closest("[hidden]")) opener.focus();
  else document.activeElement.blur();
}

function toggle(overlay, show) {
  const open = show === undefined ? $(overlay).hidden : show;
  if (open) openOverlay(overlay, $(overlay).querySelector("button"));
  else closeOverlay(overlay);
}

function toggleGuidelines(show) {
  $("guidelines-text").innerHTML = state.config.guidelines ||
    '<p class="muted">No guidelines were given for this review: ask the person who started it.</p>';
  toggle("guidelines", show);
  $("guidelines-text").scrollTop = 0;
}

// A dialog keeps Tab inside itself while it is open.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Tab") return;
  const open = [...document.querySelectorAll(".overlay")].find((o) => !o.hidden);
  if (!open) return;
  const focusable = [...open.querySelectorAll("button, input, select, textarea, [tabindex]")].filter((el) => !el.closest("[hidden]"));
  if (!focusable.length) return;
  const [first, last] = [focusable[0], focusable[focusable.length - 1]];
  const inside = open.contains(document.activeElement);
  if (event.shiftKey && (document.activeElement === first || !inside)) { event.preventDefault(); last.focus(); }
  else if (!event.shiftKey && (document.activeElement === last || !inside)) { event.preventDefault(); first.focus(); }
}, true);

// Key actions run one after another: a key pressed while the previous action is still
// talking to the server waits for it, so fast typists never see two records interleave.
let pending = Promise.resolve();
const queueAction = (action) => { pending = pending.then(action).catch((error) => say(String(error), true)); };

function keyAction(event) {
  if (!$("name-dialog").hidden || !$("ask").hidden) return null;
  for (const overlay of ["help", "guidelines"]) {
    if (!$(overlay).hidden) return event.key === "Escape" ? () => { toggle(overlay, false); } : null;
  }
  if (!$("conflict").hidden) {
    if (event.key === "Enter") return () => resolveConflict(true);
    if (event.key === "Escape") return () => resolveConflict(false);
    return null;
  }
  if (state.editing) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) return saveEdit;
    if (event.altKey && /^[0-9]$/.test(event.key)) return () => jumpDigit(event.key);
    if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) return () => jumpBy(event.key === "ArrowDown" ? 1 : -1);
    if (event.key === "Escape") return () => { closeEditor(); render(); };
    return null;
  }
  const field = event.target instanceof Element && event.target.matches("input, textarea, select") && !event.target.closest("[hidden]");
  if (field && event.target.matches("select") && event.key === "Escape") return () => event.target.blur();
  if (field) return null;
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  if (state.config.adjudicate && /^[1-9]$/.test(event.key)) return () => pick(Number(event.key) - 1);
  if (/^[0-9]$/.test(event.key)) return () => jumpDigit(event.key);
  const actions = {
    a: () => decide("accept"), x: () => decide("reject"), e: openEditor, u: undo,
    ArrowRight: () => show(state.index + 1), ArrowLeft: () => show(state.index - 1),
    r: () => { $("raw").open = !$("raw").open; }, "?": () => toggle("help"), g: () => toggleGuidelines(),
  };
  return actions[event.key] || null;
}

document.addEventListener("keydown", (event) => {
  const action = keyAction(event);
  if (!action) return;
  event.preventDefault();
  queueAction(action);
});

$("editor").addEventListener("submit", (e) => e.preventDefault());
$("filters").addEventListener("submit", (e) => e.preventDefault());  // Enter in the search box
$("help-button").addEventListener("click", () => toggle("help"));
$("help-close").addEventListener("click", () => { toggle("help", false); $("help-button").focus(); });
$("guidelines-button").addEventListener("click", () => toggleGuidelines());
$("guidelines-close").addEventListener("click", () => { toggle("guidelines", false); $("guidelines-button").focus(); });
$("conflict-mine").addEventListener("click", () => queueAction(() => resolveConflict(true)));
$("conflict-theirs").addEventListener("click", () => queueAction(() => resolveConflict(false)));
$("votes-list").addEventListener("click", (e) => {
  const button = e.target.closest("button.pick");
  if (button) queueAction(() => pick(Number(button.dataset.vote)));
});
$("queue-list").addEventListener("click", (e) => { const li = e.target.closest("li"); if (li) queueAction(() => show(Number(li.dataset.index))); });
$("queue-list").addEventListener("keydown", (e) => {
  const li = e.target.closest("li");
  if (li && e.key === "Enter") { e.preventDefault(); e.stopPropagation(); queueAction(() => show(Number(li.dataset.index))); }
});
$("filters").addEventListener("change", (e) => {
  // Hand the keys back to the page: a key pressed next must decide, not change the filter.
  if (document.activeElement) document.activeElement.blur();
  if (state.editing) {
    if (e.target.type === "checkbox") e.target.checked = Boolean(state.applied.mine);
    else e.target.value = state.applied[e.target.id.replace("filter-", "")] ?? "";
    editFirst(); return;
  }
  queueAction(async () => { state.index = 0; await loadQueue(); await show(0); });
});
const buttons = {
  "btn-accept": () => decide("accept"), "btn-reject": () => decide("reject"), "btn-edit": () => openEditor(),
  "btn-undo": () => undo(), "btn-prev": () => show(state.index - 1), "btn-next": () => show(state.index + 1),
};
Object.entries(buttons).forEach(([id, action]) => $(id).addEventListener("click", () => queueAction(action)));

function setAnnotator(name) {
  state.annotator = name;
  $("annotator").textContent = `annotator: ${name}${state.config.adjudicate ? " (adjudicating)" : ""}`;
}

$("name-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("name-input").value.trim();
  if (!name) return;
  localStorage.setItem("mmtrans-annotator", name);
  setAnnotator(name);
  $("name-input").blur();  // hidden inputs may keep focus a moment, and swallow the keys
  $("name-dialog").hidden = true;
  queueAction(teamNamed);
});

(async function start() {
  const { status, data } = await api("/api/config");
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  state.config = data;
  $("guidelines-button").hidden = !data.guidelines;
  // Adjudication starts where the work is: the records annotators disagree on.
  if (data.adjudicate) $("filter-status").value = "disagreement";
  teamSetup(data);
  const name = data.annotator || localStorage.getItem("mmtrans-annotator");
  if (name) setAnnotator(name); else { $("name-dialog").hidden = false; $("name-input").focus(); }
  // A reload starts where the work is: the first record to review, in the first page or
  // (far into a long queue) in the page that begins at it.
  await loadQueue();
  let first = state.entries.findIndex((e) => e.state === "to review");
  if (first < 0 && state.moreAfter && !data.adjudicate) {
    const { data: todo } = await api(`/api/queue?${new URLSearchParams({ status: "to review", limit: 1 })}`);
    if (todo && todo.entries && todo.entries.length) { await loadQueue({ after: cursorAt(todo.entries[0]) }); first = 0; }
  }
  loadAgreement();
  await show(Math.max(first, 0));
  setInterval(() => queueAction(poll), POLL_MS);
})();

// -- jumping to a row ----------------------------------------------------------------------

// The editor's rows in order, numbered from 1: mentions, then relations, events, arguments.
function editorSlots() {
  return [...state.rows.map((_, i) => ({ row: i + 1, slot: { kind: "mention", i } })),
    ...Structures.slots(state.rows.length)];
}

function currentSlot() {
  if (Structures.armed) return Structures.armed;
  return state.armed !== null && state.armed !== undefined ? { kind: "mention", i: state.armed } : null;
}

function armSlot(slot) {
  if (slot.kind === "mention") { Structures.disarm(); state.armed = slot.i; renderRows(); }
  else { state.armed = null; renderRows(); Structures.arm(slot); }
}

// Row n armed (the editor opens on it): the next selection in the text sets its string.
function jumpTo(n) {
  if (!state.view) return;
  if (!state.editing) openEditor();
  const found = editorSlots().find((s) => s.row === n);
  if (!found) { say(`no row ${n}`, true); return; }
  // The selection still in the text is the previous string's: the armed row waits for a new one.
  const area = $("edit-text");
  area.setSelectionRange(area.selectionEnd, area.selectionEnd);
  armSlot(found.slot);
  const row = document.querySelector(`#editor [data-row="${found.slot.kind === "mention" ? n - 1 : n}"]`);
  if (row) row.scrollIntoView({ block: "nearest" });
  $("edit-text").focus();
  say(`row ${n}: select its string in the text`);
}

let digits = "", digitsTimer = null;
function jumpDigit(d) {
  digits += d;
  clearTimeout(digitsTimer);
  const rows = state.editing ? editorSlots().length : Infinity;
  if (Number(digits) > rows) digits = d;  // no such row: the digit starts a new number
  const n = Number(digits);
  digitsTimer = setTimeout(() => { digits = ""; }, DIGITS_MS);
  if (n >= 1) jumpTo(n);
}

function jumpBy(step) {
  const slots = editorSlots();
  const now = currentSlot();
  const at = now ? slots.findIndex((s) => s.slot.kind === now.kind && s.slot.i === now.i && s.slot.j === now.j) : -1;
  const next = slots[Math.max(0, Math.min(slots.length - 1, at + step))];
  if (next) jumpTo(next.row);
}

// A settled touch selection sets the armed string, or again the one it set before (`slot`).
function takeTouchSelection(slot) {
  if (!state.editing) return null;
  if (slot) armSlot(slot);
  const set = currentSlot();
  if (set) setFromSelection();
  return set;
}
