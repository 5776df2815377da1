// mmtrans review page, a team's part: how far each record and each annotator is, "mine to
// do", comments, accepting every record that passes, and editing one annotator's version
// when adjudicating. Loaded before app.js; its functions run once app.js is loaded (they use
// its `$`, `api`, `state`, `ask`, `say`, `show`, `loadQueue`, `openEditor`, `queueAction`).
"use strict";

// How far a record is, for its queue item: "1/2", "done", "disputed", "adjudicated".
function teamBadge(e) {
  const r = e.record;
  if (!r || r.needed <= 1) return "";
  return ` <span class="record-progress progress-${escapeHtml(r.label.replace("/", "-of-"))}" title="annotators who decided it">${escapeHtml(r.label)}</span>`;
}

// The record's own team part: how far it is, who it is given to, its comments.
function renderTeam() {
  const v = state.view;
  if (!v) return;
  const r = v.record;
  const badge = $("record-progress");
  badge.hidden = !r || r.needed <= 1;
  if (r && r.needed > 1) {
    const agreed = r.agreement === null || r.agreement === undefined ? "" : `, ${Math.round(r.agreement * 100)}% agree`;
    badge.textContent = `annotators: ${r.label}${agreed}${v.assigned ? ` (for ${v.assigned.join(", ")})` : ""}`;
  }
  $("comments-list").innerHTML = (v.comments || []).map((c) =>
    `<li><b>${escapeHtml(c.annotator)}</b>: ${escapeHtml(c.text)} <span class="muted">${c.review_id ? "with a decision, " : ""}${escapeHtml(c.created)}</span></li>`).join("");
  $("comments-list").hidden = !(v.comments || []).length;
  $("comment-text").value = "";
}

// Per annotator: decided (of assigned, when records are given out).
function renderTeamProgress(annotators) {
  const rows = Object.entries(annotators || {});
  $("team-progress").hidden = !rows.length;
  $("team-progress").innerHTML = rows.map(([name, p]) =>
    `<span class="annotator-progress">${escapeHtml(name)}: ${p.decided}${p.assigned ? ` / ${p.assigned}` : ""}</span>`).join(" ");
}

// The comment typed so far goes with the next decision (and stays if it is not saved).
function pendingComment() {
  const text = $("comment-text").value.trim();
  return text || undefined;
}

async function saveComment() {
  const v = state.view;
  const text = pendingComment();
  if (!v || !text) { say("write a comment first", true); return; }
  const { status, data } = await api("/api/comment", { run: v.run_id, id: v.id, annotator: state.annotator, text });
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  state.view = data.view;
  render();
  say(`comment saved on ${v.id}`);
}

// Every record in the current filter still to decide that passes every check, accepted
// after one question.
async function acceptPassing() {
  if (state.editing) { editFirst(); return; }
  const body = { annotator: state.annotator, ...filters() };
  const { status, data } = await api("/api/accept-passing", body);
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  if (!data.count) { say("no record in this view is still to decide and passes every check"); return; }
  const yes = await ask({ title: "Accept every record that passes?",
    text: `${data.count} record(s) in this view are still to decide and pass every check.`,
    choices: [`Accept all ${data.count}`] });
  if (!yes) { say("nothing accepted"); return; }
  const done = await api("/api/accept-passing", { ...body, confirm: data.records });
  if (done.status !== 200) { say(done.data.error || `error ${done.status}`, true); return; }
  say(`accepted ${done.data.accepted} record(s)${done.data.skipped ? `; ${done.data.skipped} changed meanwhile and were left` : ""}`);
  const current = state.entries[state.index];
  await loadQueue();
  const i = current ? state.entries.findIndex((e) => same(e, current.run_id, current.id)) : -1;
  await show(i >= 0 ? i : 0);
}

// Adjudicating: open one annotator's version in the editor, to change it and save it as
// the final one.
async function editVersion(i) {
  const v = state.view;
  const vote = v && v.votes[i];
  if (!vote || !vote.record) return;
  const { status, data } = await api(`/api/record?run=${encodeURIComponent(v.run_id)}&id=${encodeURIComponent(v.id)}&version=${vote.id}${viewerParam()}`);
  if (status !== 200) { say(data.error || `error ${status}`, true); return; }
  state.view = data;
  render();
  openEditor();
  say(`editing ${vote.annotator}'s version`);
}

// The page's annotator, for the server to know whose work to show (blind review).
function viewerParam() {
  return state.annotator ? `&annotator=${encodeURIComponent(state.annotator)}` : "";
}

// Called once by app.js's start(), the configuration read.
function teamSetup(config) {
  // Blind review: an annotator starts on their own work; the lead on the disputes.
  if (config.overlap > 1 && !config.adjudicate) $("filter-mine").checked = true;
  $("comment-save").addEventListener("click", () => queueAction(saveComment));
  $("btn-accept-passing").addEventListener("click", () => queueAction(acceptPassing));
  $("votes-list").addEventListener("click", (e) => {
    const button = e.target.closest("button.edit-version");
    if (button) queueAction(() => editVersion(Number(button.dataset.vote)));
  });
}

// A name given in the page's dialog: the queue is read again as that annotator's.
async function teamNamed() {
  if ($("filter-mine").checked || (state.config.overlap || 1) > 1) {
    await loadQueue();
    const first = state.entries.findIndex((e) => e.state === "to review");
    await show(first >= 0 ? first : 0);
  }
}
