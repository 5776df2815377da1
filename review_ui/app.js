// mmtrans review page: plain JavaScript over the JSON API in mmtrans/review/app.py.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token") || sessionStorage.getItem("mmtrans-token") || "";
if (token) sessionStorage.setItem("mmtrans-token", token);

const state = {
  annotator: null, entries: [], index: 0, view: null,
  editing: false, conflict: null, lastDecision: null, checkTimer: null,
};

async function api(path, body) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, body === undefined ? { headers } :
    { method: "POST", headers, body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  return { status: response.status, data };
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

const hue = (i) => (i * 137) % 360;
const htmlLang = (code) => ({ zh: "zh-Hans" }[code] || code);

// The store's offsets count code points (Python); a JavaScript string counts UTF-16 units,
// two for 𠮷 or an emoji. Map each code-point offset to its UTF-16 index.
function utf16Offsets(text) {
  const at = [0];
  for (const ch of text) at.push(at[at.length - 1] + ch.length);
  return at;
}

// Text with every located mention highlighted in its own colour, the label after it.
function highlight(text, mentions) {
  const at = utf16Offsets(text);
  const spans = mentions.map((m, i) => ({ ...m, i }))
    .filter((m) => m.start !== null && m.start !== undefined && m.end > m.start)
    .map((m) => ({ ...m, start: at[m.start], end: at[m.end] }))
    .filter((m) => m.start !== undefined && m.end !== undefined);
  const cuts = new Set([0, text.length]);
  spans.forEach((m) => { cuts.add(m.start); cuts.add(m.end); });
  const points = [...cuts].sort((a, b) => a - b);
  let html = "";
  for (let k = 0; k < points.length - 1; k++) {
    const [from, to] = [points[k], points[k + 1]];
    const covering = spans.filter((m) => m.start <= from && m.end >= to)
      .sort((a, b) => (a.end - a.start) - (b.end - b.start));
    const piece = escapeHtml(text.slice(from, to));
    html += covering.length
      ? `<mark class="m" data-mention="${covering[0].i}" style="--h:${hue(covering[0].i)}" title="${escapeHtml(covering[0].label)}">${piece}</mark>`
      : piece;
    spans.filter((m) => m.end === to).sort((a, b) => b.start - a.start).forEach((m) => {
      html += `<span class="tag" style="--h:${hue(m.i)}">${escapeHtml(m.label)}</span>`;
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

async function loadQueue() {
  const q = new URLSearchParams({
    code: $("filter-code").value, dataset: $("filter-dataset").value, status: $("filter-status").value,
  });
  const { data } = await api(`/api/queue?${q}`);
  state.entries = data.entries || [];
  fillSelect($("filter-code"), data.codes || []);
  fillSelect($("filter-dataset"), data.datasets || []);
  const p = data.progress;
  const who = Object.entries(p.by_annotator).map(([name, n]) => `${escapeHtml(name)}: ${n}`).join(", ");
  $("progress").innerHTML = `reviewed <b id="reviewed">${p.reviewed}</b> / <b id="in-queue">${p.in_queue}</b> in queue${who ? ` (${who})` : ""}`;
  renderQueue();
}

function fillSelect(select, values) {
  const current = select.value;
  const known = new Set([...select.options].map((o) => o.value));
  values.filter((v) => !known.has(v)).forEach((v) => select.add(new Option(v, v)));
  select.value = current;
}

function renderQueue() {
  $("queue-list").innerHTML = state.entries.map((e, i) =>
    `<li data-index="${i}" tabindex="0" class="${i === state.index ? "current" : ""}"${i === state.index ? ' aria-current="true"' : ""}>${escapeHtml(e.id)}
      <span class="state state-${e.state.replace(" ", "-")}">${escapeHtml(e.state)}</span><br>
      <span class="muted">${escapeHtml(e.codes.join(", ") || e.status)}</span></li>`).join("");
  const current = $("queue-list").querySelector("li.current");
  if (current) current.scrollIntoView({ block: "nearest" });
}

async function show(index) {
  if (!state.entries.length) {
    $("empty").hidden = false; $("view").hidden = true; state.view = null; return;
  }
  state.index = Math.max(0, Math.min(index, state.entries.length - 1));
  const entry = state.entries[state.index];
  const { status, data } = await api(`/api/record?run=${encodeURIComponent(entry.run_id)}&id=${encodeURIComponent(entry.id)}`);
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  state.view = data;
  renderQueue();
  render();
}

function render() {
  const v = state.view;
  $("empty").hidden = true; $("view").hidden = false;
  const target = v.target;
  $("meta").innerHTML = `<span class="badge">${escapeHtml(v.dataset)}</span><span class="badge">${escapeHtml(v.id)}</span>` +
    `<span class="badge">model: ${escapeHtml(v.status)}</span><span class="badge" id="review-state">review: ${escapeHtml(v.state)}</span>` +
    `<span class="badge">text label: ${escapeHtml(v.source.label || "—")} → ${escapeHtml((target && target.label) || v.expected_label || "—")}</span>`;
  $("src-lang").textContent = v.src;
  $("tgt-lang").textContent = v.version && v.version !== "translation" ? `${v.tgt}, ${v.version}` : v.tgt;
  // Glyph shapes follow the language: Chinese drawn with Japanese fonts looks wrong.
  $("source-text").lang = htmlLang(v.src); $("target-text").lang = htmlLang(v.tgt);
  $("source-text").innerHTML = highlight(v.source.text, v.source.mentions);
  $("target-text").innerHTML = target ? highlight(target.text, target.mentions) : '<span class="muted">no usable translation</span>';
  const rows = v.source.mentions.map((m, i) => {
    const t = target && target.mentions[i];
    return `<tr><td><span class="swatch" style="--h:${hue(i)}"></span> ${i + 1}</td>` +
      `<td>${escapeHtml(m.label)} → ${escapeHtml((t && t.label) || v.expected_labels[i] || "")}</td>` +
      `<td>${escapeHtml(m.text)}</td><td>${t ? escapeHtml(t.text) : '<span class="muted">missing</span>'}</td></tr>`;
  });
  $("mentions").querySelector("tbody").innerHTML = rows.join("");
  $("problems").innerHTML = v.problems.length ? "<h2>Problems</h2>" + problemList(v.problems) : "";
  $("decisions").innerHTML = v.reviews.map((r) =>
    `${escapeHtml(r.annotator)}: ${escapeHtml(r.decision)} at ${escapeHtml(r.created)}`).join("<br>");
  $("raw-text").textContent = v.raw || "(none)";
}

async function decide(decision, record, force = false) {
  const v = state.view;
  if (!v) return;
  const body = { run: v.run_id, id: v.id, annotator: state.annotator, decision, seen: v.seen, force };
  if (record) body.record = record;
  let { status, data } = await api("/api/decision", body);
  if (status === 422 && data.error === "needs_reason") {
    // Keeping a record with open problems is a second, explicit choice, with a reason.
    const codes = [...new Set(data.problems.map((p) => p.code))].join(", ");
    const reason = window.prompt(`This record still has problems (${codes}). ` +
      `Keep it anyway? Say why (it is exported only with --include-overridden):`);
    if (!reason || !reason.trim()) { say(`${decision} not saved: it still has problems (${codes})`, true); return; }
    ({ status, data } = await api("/api/decision", { ...body, override: reason.trim() }));
  }
  if (status === 409) {
    state.conflict = { decision, record };
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
  state.lastDecision = { run: v.run_id, id: v.id, review: data.review };
  say(`${decision} saved for ${v.id}`);
  closeEditor();
  await loadQueue();
  // Move on to the record after this one: where a filter took this one out of the queue,
  // the next one now stands at this index.
  const still = state.entries.findIndex((e) => e.run_id === v.run_id && e.id === v.id);
  const next = still >= 0 ? still + 1 : state.index;
  await show(Math.min(next, state.entries.length - 1));
}

async function undo() {
  // The server knows each annotator's decisions: `u` walks back through them, one per
  // press, also after a reload.
  const { status, data } = await api("/api/undo", { annotator: state.annotator });
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  state.lastDecision = null;
  say(`undid your decision on ${data.id}`);
  await loadQueue();
  const index = state.entries.findIndex((e) => e.run_id === data.run && e.id === data.id);
  await show(index >= 0 ? index : state.index);
}

// -- editing -----------------------------------------------------------------------------

function openEditor() {
  const v = state.view;
  if (!v) return;
  const base = v.target || { text: "", label: v.expected_label, mentions: v.source.mentions.map((m, i) => ({ label: v.expected_labels[i], text: "" })) };
  state.editing = true;
  $("editor").hidden = false;
  $("edit-label").value = base.label || "";
  $("edit-text").value = base.text;
  $("edit-mentions").innerHTML = base.mentions.map((m, i) =>
    `<div class="mention-edit"><span class="swatch" style="--h:${hue(i)}"></span>` +
    `<input class="edit-mention-label" aria-label="label ${i + 1}" value="${escapeHtml(m.label)}">` +
    `<input class="edit-mention-text" aria-label="string ${i + 1}" value="${escapeHtml(m.text)}"></div>`).join("");
  $("edit-text").focus();
  scheduleCheck();
}

function closeEditor() {
  if ($("editor").contains(document.activeElement)) document.activeElement.blur();
  state.editing = false;
  $("editor").hidden = true;
  $("edit-check").innerHTML = "";
}

function editedRecord() {
  const labels = [...document.querySelectorAll(".edit-mention-label")];
  const texts = [...document.querySelectorAll(".edit-mention-text")];
  return {
    text: $("edit-text").value, label: $("edit-label").value || null,
    mentions: labels.map((l, i) => ({ label: l.value, text: texts[i].value })),
  };
}

function scheduleCheck() {
  clearTimeout(state.checkTimer);
  state.checkTimer = setTimeout(runCheck, 150);
}

async function runCheck() {
  const v = state.view;
  const { status, data } = await api("/api/check", { run: v.run_id, id: v.id, record: editedRecord() });
  if (status !== 200) {
    $("edit-check").innerHTML = `<ul><li>${escapeHtml(data.error || `error ${status}`)}</li></ul>`;
    return;
  }
  $("edit-check").innerHTML = problemList(data.problems);
  $("target-text").innerHTML = highlight(data.record.text, data.record.mentions);
}

// -- keys --------------------------------------------------------------------------------

function toggleHelp(show) {
  $("help").hidden = show === undefined ? !$("help").hidden : !show;
  if (!$("help").hidden) $("help-close").focus();
}

// A dialog keeps Tab inside itself while it is open.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Tab") return;
  const open = [...document.querySelectorAll(".overlay")].find((o) => !o.hidden);
  if (!open) return;
  const focusable = [...open.querySelectorAll("button, input, select, textarea, [tabindex]")];
  if (!focusable.length) return;
  const [first, last] = [focusable[0], focusable[focusable.length - 1]];
  const inside = open.contains(document.activeElement);
  if (event.shiftKey && (document.activeElement === first || !inside)) { event.preventDefault(); last.focus(); }
  else if (!event.shiftKey && (document.activeElement === last || !inside)) { event.preventDefault(); first.focus(); }
}, true);

// Key actions run one after another: a key pressed while the previous action is still
// talking to the server waits for it, so fast typists never see two records interleave.
let pending = Promise.resolve();

function keyAction(event) {
  if (!$("name-dialog").hidden) return null;
  if (!$("conflict").hidden) {
    if (event.key === "Enter") return async () => { $("conflict").hidden = true; const c = state.conflict; await decide(c.decision, c.record, true); };
    if (event.key === "Escape") return async () => { $("conflict").hidden = true; closeEditor(); say("kept their decision"); await loadQueue(); await show(state.index); };
    return null;
  }
  if (state.editing) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) return () => decide("edit", editedRecord());
    if (event.key === "Escape") return () => { closeEditor(); render(); };
    return null;
  }
  if (event.target.matches("select") && event.key === "Escape") return () => event.target.blur();
  if (event.target.matches("input, textarea, select")) return null;
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  const actions = {
    a: () => decide("accept"), x: () => decide("reject"), e: openEditor, u: undo,
    ArrowRight: () => show(state.index + 1), ArrowLeft: () => show(state.index - 1),
    r: () => { $("raw").open = !$("raw").open; }, "?": () => toggleHelp(), Escape: () => toggleHelp(false),
  };
  return actions[event.key] || null;
}

document.addEventListener("keydown", (event) => {
  const action = keyAction(event);
  if (!action) return;
  event.preventDefault();
  pending = pending.then(action).catch((error) => say(String(error), true));
});

$("editor").addEventListener("input", scheduleCheck);
$("editor").addEventListener("submit", (e) => e.preventDefault());
$("help-button").addEventListener("click", () => toggleHelp());
$("help-close").addEventListener("click", () => { toggleHelp(false); $("help-button").focus(); });
$("conflict-mine").addEventListener("click", async () => { $("conflict").hidden = true; const c = state.conflict; await decide(c.decision, c.record, true); });
$("conflict-theirs").addEventListener("click", async () => { $("conflict").hidden = true; closeEditor(); await loadQueue(); await show(state.index); });
$("queue-list").addEventListener("click", (e) => { const li = e.target.closest("li"); if (li) show(Number(li.dataset.index)); });
$("queue-list").addEventListener("keydown", (e) => {
  const li = e.target.closest("li");
  if (li && e.key === "Enter") { e.preventDefault(); e.stopPropagation(); show(Number(li.dataset.index)); }
});
$("filters").addEventListener("change", async () => {
  // Hand the keys back to the page: a key pressed next must decide, not change the filter.
  if (document.activeElement) document.activeElement.blur();
  state.index = 0; await loadQueue(); await show(0);
});
const buttons = {
  "btn-accept": () => decide("accept"), "btn-reject": () => decide("reject"), "btn-edit": () => openEditor(),
  "btn-undo": () => undo(), "btn-prev": () => show(state.index - 1), "btn-next": () => show(state.index + 1),
};
Object.entries(buttons).forEach(([id, action]) => $(id).addEventListener("click", () => {
  pending = pending.then(action).catch((error) => say(String(error), true));
}));

function setAnnotator(name) {
  state.annotator = name;
  $("annotator").textContent = `annotator: ${name}`;
}

$("name-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("name-input").value.trim();
  if (!name) return;
  localStorage.setItem("mmtrans-annotator", name);
  setAnnotator(name);
  $("name-input").blur();  // hidden inputs may keep focus a moment, and swallow the keys
  $("name-dialog").hidden = true;
});

(async function start() {
  const { status, data } = await api("/api/config");
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  const name = data.annotator || localStorage.getItem("mmtrans-annotator");
  if (name) setAnnotator(name); else { $("name-dialog").hidden = false; $("name-input").focus(); }
  await loadQueue();
  const first = state.entries.findIndex((e) => e.state === "to review");
  await show(first >= 0 ? first : 0);  // a reload starts where the work is
})();
