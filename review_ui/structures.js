// mmtrans review page: relations and events (tables paired row by row, highlights in both
// texts, their part of the editor), and the selection every string is set by (mouse,
// keyboard, touch that follows the handles until the selection settles). Loaded before
// app.js; uses its helpers ($, state, escapeHtml, hue, highlight, say) only when called.
"use strict";

//: A touch selection is taken once it has not changed for this long (handles moved).
const SETTLE_MS = 450;
//: Digits typed within this long make one row number (1 then 2: row 12).
const DIGITS_MS = 700;

const Structures = (() => {
  // rels: [{source, relation, head, tail, head_label, tail_label, spans: {head, tail}}]
  // events: [{source, type, trigger, span, args: [{source, role, text, span}]}]
  // armed: the string the next selection sets: {kind: "head"|"tail", i} (a relation's),
  // {kind: "trigger", i} or {kind: "arg", i, j}; null when a mention row (or none) is.
  const st = { rels: [], events: [], armed: null, problems: [] };

  const has = (v) => v && (v.source.relations.length || v.source.events.length ||
    (v.target && (v.target.relations.length || v.target.events.length)));
  const base = (v) => v.source.mentions.length + (v.target ? v.target.mentions.length : 0);
  // Each relation, trigger and argument has its own colour, after the mentions'; a source
  // item's colour is its translation's (same row, same colour in both texts).
  const relColour = (v, i) => base(v) + i;
  const eventColour = (v, i) => base(v) + v.source.relations.length + 2 * i;
  const argColour = (v, i, j) => eventColour(v, i) + 1 + 7 * (j + 1);
  const kinds = (v, kind) => (v.label_kinds && v.label_kinds[kind]) || v.labels || [];

  function options(labels, current, placeholder = null) {
    const all = !current || labels.includes(current) ? labels : [current, ...labels];
    return (placeholder !== null ? `<option value="">${escapeHtml(placeholder)}</option>` : "") +
      all.map((l) => `<option${l === current ? " selected" : ""}>${escapeHtml(l)}</option>`).join("");
  }

  // Problems of the translation, by where they lie: the row of the target item they name.
  function problemsAt(problems, prefix) {
    return problems.filter((p) => p.where && (p.where === prefix || p.where.startsWith(prefix + ".") || p.where.startsWith(prefix + "[")));
  }
  const problemHtml = (list) => list.map((p) => `<span class="row-problem">${escapeHtml(p.code)}: ${escapeHtml(p.message)}</span>`).join(" ");

  // -- the view ---------------------------------------------------------------------------

  // Spans to highlight beside the mentions: [{start, end, label, colour}] for one side.
  function spans(v, side) {
    const out = [];
    const at = side === "source" ? v.source_spans || {} : v.target_spans || {};
    const add = (where, label, colour) => {
      const s = at[where];
      if (s) out.push({ start: s[0], end: s[1], label, colour });
    };
    const rec = side === "source" ? v.source : v.target;
    if (!rec) return out;
    (v.relation_pairs || []).forEach((p) => {
      const k = side === "source" ? p.source : p.target;
      if (k === null) return;
      const r = rec.relations[k];
      const c = p.source === null ? null : relColour(v, p.source);
      add(`relations[${k}].head`, `${r.relation} ▸`, c);
      add(`relations[${k}].tail`, `▸ ${r.relation}`, c);
    });
    (v.event_pairs || []).forEach((p) => {
      const k = side === "source" ? p.source : p.target;
      if (k === null) return;
      const e = rec.events[k];
      add(`events[${k}].trigger`, e.type, p.source === null ? null : eventColour(v, p.source));
      p.arguments.forEach((a) => {
        const j = side === "source" ? a.source : a.target;
        if (j === null) return;
        const c = p.source === null || a.source === null ? null : argColour(v, p.source, a.source);
        add(`events[${k}].arguments[${j}]`, e.arguments[j].role, c);
      });
    });
    return out;
  }

  // The text of one side with its mentions and these spans highlighted.
  function highlighted(v, side, mentions, mentionColours) {
    const text = side === "source" ? v.source.text : v.target.text;
    const extra = spans(v, side);
    const colours = [...(mentionColours || mentions.map((_, i) => i)), ...extra.map((s) => s.colour)];
    return highlight(text, [...mentions, ...extra], colours);
  }

  const cell = (s, missing = "missing") => (s ? escapeHtml(s) : `<span class="missing">${missing}</span>`);
  const swatch = (c) => (c === null ? '<span class="swatch added"></span>' : `<span class="swatch" style="--h:${hue(c)}"></span>`);
  const labelPair = (old, expected, got) => (got && got !== expected
    ? `${escapeHtml(old)} → <b class="relabelled">${escapeHtml(got)}</b> <span class="muted">(expected ${escapeHtml(expected)})</span>`
    : `${escapeHtml(old)} → ${escapeHtml(got || expected)}`);

  // The relation and event tables of the record as the model (or the last edit) has it.
  function render(v, rowOffset) {
    const box = $("structures");
    if (!has(v)) { box.innerHTML = ""; return; }
    const t = v.target;
    const problems = v.problems || [];
    let n = rowOffset;
    const rels = (v.relation_pairs || []).map((p) => {
      const s = p.source !== null ? v.source.relations[p.source] : null;
      const x = p.source !== null ? v.expected_relations[p.source] : null;
      const r = p.target !== null && t ? t.relations[p.target] : null;
      const mine = p.target !== null ? problemsAt(problems, `relations[${p.target}]`) : [];
      n += 1;
      return `<tr data-row="${n}"><td>${swatch(p.source === null ? null : relColour(v, p.source))} ${n}</td>` +
        `<td>${s ? labelPair(s.relation, x.relation, r && r.relation) : escapeHtml(r.relation)}</td>` +
        `<td>${s ? escapeHtml(s.head) : '<span class="muted">not in the source</span>'} → ${r ? cell(r.head) : cell("")}</td>` +
        `<td>${s ? escapeHtml(s.tail) : '<span class="muted">not in the source</span>'} → ${r ? cell(r.tail) : cell("")}</td>` +
        `<td>${problemHtml(mine)}</td></tr>`;
    });
    const events = (v.event_pairs || []).map((p) => {
      const s = p.source !== null ? v.source.events[p.source] : null;
      const x = p.source !== null ? v.expected_events[p.source] : null;
      const e = p.target !== null && t ? t.events[p.target] : null;
      const own = p.target !== null ? problemsAt(problems, `events[${p.target}].trigger`).concat(
        problemsAt(problems, `events[${p.target}].type`), problems.filter((q) => q.where === `events[${p.target}].arguments`)) : [];
      n += 1;
      let html = `<tr class="event-row" data-row="${n}"><td>${swatch(p.source === null ? null : eventColour(v, p.source))} ${n}</td>` +
        `<td>${s ? labelPair(s.type, x.type, e && e.type) : escapeHtml(e.type)}</td>` +
        `<td colspan="2">trigger: ${s ? escapeHtml(s.trigger || "—") : '<span class="muted">not in the source</span>'} → ${e ? cell(e.trigger, "—") : cell("")}</td>` +
        `<td>${problemHtml(own)}</td></tr>`;
      p.arguments.forEach((a) => {
        const sa = s && a.source !== null ? s.arguments[a.source] : null;
        const xa = x && a.source !== null ? x.arguments[a.source] : null;
        const ta = e && a.target !== null ? e.arguments[a.target] : null;
        const mine = p.target !== null && a.target !== null ? problemsAt(problems, `events[${p.target}].arguments[${a.target}]`) : [];
        n += 1;
        html += `<tr class="argument-row" data-row="${n}"><td>${swatch(p.source === null || a.source === null ? null : argColour(v, p.source, a.source))} ${n}</td>` +
          `<td class="role">${sa ? labelPair(sa.role, xa.role, ta && ta.role) : escapeHtml(ta.role)}</td>` +
          `<td colspan="2">${sa ? escapeHtml(sa.text) : '<span class="muted">not in the source</span>'} → ${ta ? cell(ta.text) : cell("")}</td>` +
          `<td>${problemHtml(mine)}</td></tr>`;
      });
      return html;
    });
    const listProblem = (name) => problemHtml(problems.filter((q) => q.where === name));
    box.innerHTML =
      (rels.length || v.source.relations.length ? `<table id="relations"><caption>Relations ${listProblem("relations")}</caption>` +
        "<thead><tr><th>#</th><th>relation</th><th>head</th><th>tail</th><th>problems</th></tr></thead>" +
        `<tbody>${rels.join("")}</tbody></table>` : "") +
      (events.length || v.source.events.length ? `<table id="events"><caption>Events ${listProblem("events")}</caption>` +
        "<thead><tr><th>#</th><th>type / role</th><th colspan=\"2\">trigger / argument</th><th>problems</th></tr></thead>" +
        `<tbody>${events.join("")}</tbody></table>` : "");
  }

  // -- the editor -------------------------------------------------------------------------

  function open(v) {
    const t = v.target;
    const ts = v.target_spans || {};
    st.armed = null;
    st.rels = (v.relation_pairs || []).map((p) => {
      const r = p.target !== null && t ? t.relations[p.target] : null;
      const x = p.source !== null ? v.expected_relations[p.source] : null;
      return {
        source: p.source, target: p.target, relation: r ? r.relation : x.relation,
        head: r ? r.head : "", tail: r ? r.tail : "",
        head_label: r ? r.head_label : x.head_label, tail_label: r ? r.tail_label : x.tail_label,
        spans: { head: r ? ts[`relations[${p.target}].head`] || null : null, tail: r ? ts[`relations[${p.target}].tail`] || null : null },
      };
    });
    st.events = (v.event_pairs || []).map((p) => {
      const e = p.target !== null && t ? t.events[p.target] : null;
      const x = p.source !== null ? v.expected_events[p.source] : null;
      return {
        source: p.source, target: p.target, type: e ? e.type : x.type, trigger: e ? e.trigger : "",
        span: e ? ts[`events[${p.target}].trigger`] || null : null,
        args: p.arguments.map((a) => {
          const ta = e && a.target !== null ? e.arguments[a.target] : null;
          const xa = x && a.source !== null ? x.arguments[a.source] : null;
          return { source: a.source, target: a.target, role: ta ? ta.role : xa.role, text: ta ? ta.text : "",
            span: ta ? ts[`events[${p.target}].arguments[${a.target}]`] || null : null };
        }),
      };
    });
    $("edit-structures").hidden = !has(v);
    // A relation or event record adds relations and events, not mentions.
    $("edit-add").hidden = has(v) && !v.source.mentions.length;
    fillTextLabel(v, t ? t.label : v.expected_label);
    // No mention to fill: the first string with a problem (or none yet) takes the first selection.
    if (state.armed === null) {
      const first = slots(0).find((s) => needsFix(s.slot));
      st.armed = first ? first.slot : null;
    }
    renderEditor();
  }

  // Whether a string is empty or the model's version of it has a problem.
  function needsFix(slot) {
    const problems = (state.view && state.view.problems) || [];
    const at = (where) => problems.some((p) => p.where === where);
    if (slot.kind === "head" || slot.kind === "tail") {
      const r = st.rels[slot.i];
      return !r[slot.kind] || (r.target !== null && at(`relations[${r.target}].${slot.kind}`));
    }
    const e = st.events[slot.i];
    if (slot.kind === "trigger") return e.target !== null && at(`events[${e.target}].trigger`);
    const a = e.args[slot.j];
    return !a.text || (e.target !== null && a.target !== null && at(`events[${e.target}].arguments[${a.target}]`));
  }

  // The text-level label is one of the run's (never free text); none when the record has none.
  function fillTextLabel(v, current) {
    const select = $("edit-label");
    const labels = kinds(v, "text");
    select.innerHTML = options(v.expected_label ? labels : [], current || "", "(none)");
    select.value = current || "";
  }

  // Every string slot of the editor, in order: [{slot, row}], row being the table's number.
  function slots(offset) {
    const out = [];
    let n = offset;
    st.rels.forEach((r, i) => {
      n += 1;
      const tail = { kind: "tail", i };
      out.push({ row: n, slot: needsFix(tail) && !needsFix({ kind: "head", i }) ? tail : { kind: "head", i } });
    });
    st.events.forEach((e, i) => {
      n += 1; out.push({ row: n, slot: { kind: "trigger", i } });
      e.args.forEach((_, j) => { n += 1; out.push({ row: n, slot: { kind: "arg", i, j } }); });
    });
    return out;
  }

  const sameSlot = (a, b) => a && b && a.kind === b.kind && a.i === b.i && a.j === b.j;
  const armButton = (slot, what) => {
    const on = sameSlot(st.armed, slot);
    const attrs = `data-kind="${slot.kind}" data-i="${slot.i}"${slot.j !== undefined ? ` data-j="${slot.j}"` : ""}`;
    return `<button type="button" class="arm" ${attrs} aria-pressed="${on}" title="the next selection in the text becomes the ${what}">${on ? "selecting…" : "Select"}</button>`;
  };
  const stringInput = (slot, value, what, span) =>
    `<span class="slot${sameSlot(st.armed, slot) ? " armed" : ""}"><input class="slot-text" data-kind="${slot.kind}" data-i="${slot.i}"${slot.j !== undefined ? ` data-j="${slot.j}"` : ""}` +
    ` aria-label="${what}" value="${escapeHtml(value)}" placeholder="select the ${what} in the text">` +
    `<span class="muted offsets">${span ? `${span[0]}–${span[1]}` : "not placed"}</span>${armButton(slot, what)}</span>`;

  function renderEditor() {
    const v = state.view;
    if (!v || !has(v)) return;
    const relLabels = kinds(v, "relation"), typeLabels = kinds(v, "event"), roleLabels = kinds(v, "role");
    const offset = state.rows.length;
    let n = offset;
    const rels = st.rels.map((r, i) => {
      n += 1;
      const src = r.source !== null ? v.source.relations[r.source] : null;
      return `<div class="rel-edit" data-rel="${i}" data-row="${n}">${swatch(r.source === null ? null : relColour(v, r.source))}<b class="row-number">${n}</b>` +
        `<select class="rel-label" aria-label="relation ${i + 1}">${options(relLabels, r.relation, r.relation ? null : "choose a relation")}</select>` +
        `<label>head ${stringInput({ kind: "head", i }, r.head, `head of relation ${i + 1}`, r.spans.head)}</label>` +
        `<label>tail ${stringInput({ kind: "tail", i }, r.tail, `tail of relation ${i + 1}`, r.spans.tail)}</label>` +
        `<span class="muted source-string">${src ? `${escapeHtml(src.head)} · ${escapeHtml(src.relation)} · ${escapeHtml(src.tail)}` : "added"}</span>` +
        `<button type="button" class="rel-delete" aria-label="delete relation ${i + 1}">×</button></div>`;
    });
    const events = st.events.map((e, i) => {
      n += 1;
      const src = e.source !== null ? v.source.events[e.source] : null;
      const args = e.args.map((a, j) => {
        n += 1;
        const sa = src && a.source !== null ? src.arguments[a.source] : null;
        const c = e.source === null || a.source === null ? null : argColour(v, e.source, a.source);
        return `<div class="arg-edit" data-event="${i}" data-arg="${j}" data-row="${n}">${swatch(c)}<b class="row-number">${n}</b>` +
          `<select class="arg-role" aria-label="role of argument ${j + 1} of event ${i + 1}">${options(roleLabels, a.role, a.role ? null : "choose a role")}</select>` +
          stringInput({ kind: "arg", i, j }, a.text, `argument ${j + 1} of event ${i + 1}`, a.span) +
          `<span class="muted source-string">${sa ? `${escapeHtml(sa.role)}: ${escapeHtml(sa.text)}` : "added"}</span>` +
          `<button type="button" class="arg-delete" aria-label="delete argument ${j + 1} of event ${i + 1}">×</button></div>`;
      }).join("");
      return `<div class="event-edit" data-event="${i}"><div class="event-head" data-row="${n - e.args.length}">${swatch(e.source === null ? null : eventColour(v, e.source))}<b class="row-number">${n - e.args.length}</b>` +
        `<select class="event-type" aria-label="type of event ${i + 1}">${options(typeLabels, e.type, e.type ? null : "choose a type")}</select>` +
        `<label>trigger ${stringInput({ kind: "trigger", i }, e.trigger, `trigger of event ${i + 1}`, e.span)}</label>` +
        `<span class="muted source-string">${src ? `${escapeHtml(src.type)}: ${escapeHtml(src.trigger || "—")}` : "added"}</span>` +
        `<button type="button" class="event-delete" aria-label="delete event ${i + 1}">×</button></div>` +
        `${args}<button type="button" class="arg-add" data-event="${i}">Add argument</button></div>`;
    });
    $("edit-relations").innerHTML = rels.join("");
    $("edit-events").innerHTML = events.join("");
    $("edit-relations-box").hidden = !st.rels.length && !v.source.relations.length && v.source.events.length > 0;
    $("edit-events-box").hidden = !st.events.length && !v.source.events.length && v.source.relations.length > 0;
    showProblems();
  }

  // The live check's problems, each beside the string it names (the edit's own indexes).
  function showProblems() {
    const problems = st.problems;
    document.querySelectorAll("#edit-structures .row-problem").forEach((el) => el.remove());
    const put = (el, list) => { if (el && list.length) el.insertAdjacentHTML("beforeend", problemHtml(list)); };
    const kept = keptIndexes();
    kept.rels.forEach((i, k) => put(document.querySelector(`.rel-edit[data-rel="${i}"]`), problemsAt(problems, `relations[${k}]`)));
    kept.events.forEach(([i, args], k) => {
      put(document.querySelector(`.event-edit[data-event="${i}"] .event-head`), problemsAt(problems, `events[${k}].trigger`)
        .concat(problemsAt(problems, `events[${k}].type`), problems.filter((p) => p.where === `events[${k}].arguments`)));
      args.forEach((j, m) => put(document.querySelector(`.arg-edit[data-event="${i}"][data-arg="${j}"]`), problemsAt(problems, `events[${k}].arguments[${m}]`)));
    });
  }

  // Which rows the edit sends (a row with no string yet is left out, as an empty mention).
  function keptIndexes() {
    const rels = st.rels.map((r, i) => [r, i]).filter(([r]) => r.head.trim() && r.tail.trim()).map(([, i]) => i);
    const events = st.events.map((e, i) => [e, i]).filter(([e]) => e.type)
      .map(([e, i]) => [i, e.args.map((a, j) => [a, j]).filter(([a]) => a.text.trim() && a.role).map(([, j]) => j)]);
    return { rels, events };
  }

  // The relations and events of the edit, for /api/check and the decision (none: not there).
  function edited() {
    const v = state.view;
    if (!v || !has(v)) return {};
    const kept = keptIndexes();
    return {
      relations: kept.rels.map((i) => {
        const r = st.rels[i];
        return { head: r.head, relation: r.relation, tail: r.tail, head_label: r.head_label, tail_label: r.tail_label };
      }),
      events: kept.events.map(([i, args]) => {
        const e = st.events[i];
        return { type: e.type, trigger: e.trigger, arguments: args.map((j) => ({ role: e.args[j].role, text: e.args[j].text })) };
      }),
    };
  }

  // The checked record came back: highlight the edit in the translation, problems by row.
  function checked(data, mentionColours) {
    const v = state.view;
    if (!v || !has(v)) return false;
    st.problems = data.problems;
    const kept = keptIndexes();
    const mentions = data.record.mentions;
    const at = data.spans || {};
    const extra = [];
    kept.rels.forEach((i, k) => {
      const r = st.rels[i];
      const c = r.source === null ? null : relColour(v, r.source);
      ["head", "tail"].forEach((part) => {
        const s = r.spans[part] || at[`relations[${k}].${part}`];
        if (s) extra.push({ start: s[0], end: s[1], label: part === "head" ? `${r.relation} ▸` : `▸ ${r.relation}`, colour: c });
      });
    });
    kept.events.forEach(([i, args], k) => {
      const e = st.events[i];
      const s = e.span || at[`events[${k}].trigger`];
      if (s) extra.push({ start: s[0], end: s[1], label: e.type, colour: e.source === null ? null : eventColour(v, e.source) });
      args.forEach((j, m) => {
        const a = e.args[j];
        const sa = a.span || at[`events[${k}].arguments[${m}]`];
        if (sa) extra.push({ start: sa[0], end: sa[1], label: a.role, colour: e.source === null || a.source === null ? null : argColour(v, e.source, a.source) });
      });
    });
    $("target-text").innerHTML = highlight(data.record.text, [...mentions, ...extra], [...mentionColours, ...extra.map((x) => x.colour)]);
    showProblems();
    return true;
  }

  // -- selection --------------------------------------------------------------------------

  function arm(slot) {
    st.armed = slot;
    if (slot) state.armed = null;
    renderEditor();
  }

  // The armed string takes the selection; false when no relation or event string is armed.
  function take(picked) {
    const a = st.armed;
    if (!a) return false;
    const put = { text: picked.text, span: [picked.start, picked.end] };
    if (a.kind === "head" || a.kind === "tail") {
      const r = st.rels[a.i];
      r[a.kind] = put.text; r.spans[a.kind] = put.span;
      // A new relation's head set: its tail is next.
      st.armed = a.kind === "head" && !r.tail ? { kind: "tail", i: a.i } : null;
    } else if (a.kind === "trigger") {
      Object.assign(st.events[a.i], { trigger: put.text, span: put.span });
      st.armed = null;
    } else {
      Object.assign(st.events[a.i].args[a.j], { text: put.text, span: put.span });
      st.armed = null;
    }
    renderEditor();
    scheduleCheck();
    return true;
  }

  // A changed text: spans that no longer hold their string are dropped (found again by the check).
  function textChanged(text) {
    const at = utf16Offsets(text);
    const holds = (s, str) => s && text.slice(at[s[0]], at[s[1]]) === str;
    st.rels.forEach((r) => ["head", "tail"].forEach((p) => { if (!holds(r.spans[p], r[p])) r.spans[p] = null; }));
    st.events.forEach((e) => {
      if (!holds(e.span, e.trigger)) e.span = null;
      e.args.forEach((a) => { if (!holds(a.span, a.text)) a.span = null; });
    });
    renderEditor();
  }

  function addRelation(picked) {
    const v = state.view;
    st.rels.push({ source: null, relation: "", head: picked ? picked.text : "", tail: "", head_label: null, tail_label: null,
      spans: { head: picked ? [picked.start, picked.end] : null, tail: null } });
    arm({ kind: picked ? "tail" : "head", i: st.rels.length - 1 });
    const select = document.querySelector(`.rel-edit[data-rel="${st.rels.length - 1}"] .rel-label`);
    if (select) select.focus();
    say(`relation ${st.rels.length} added: choose its relation${picked ? ", then select its tail" : ", then select its head and tail"}` + (v ? "" : ""));
    scheduleCheck();
  }

  function addEvent(picked) {
    st.events.push({ source: null, type: "", trigger: picked ? picked.text : "", span: picked ? [picked.start, picked.end] : null, args: [] });
    arm(picked ? null : { kind: "trigger", i: st.events.length - 1 });
    const select = document.querySelector(`.event-edit[data-event="${st.events.length - 1}"] .event-type`);
    if (select) select.focus();
    scheduleCheck();
  }

  function addArgument(i, picked) {
    st.events[i].args.push({ source: null, role: "", text: picked ? picked.text : "", span: picked ? [picked.start, picked.end] : null });
    const j = st.events[i].args.length - 1;
    arm(picked ? null : { kind: "arg", i, j });
    const select = document.querySelector(`.arg-edit[data-event="${i}"][data-arg="${j}"] .arg-role`);
    if (select) select.focus();
    scheduleCheck();
  }

  function wire() {
    const box = $("edit-structures");
    box.addEventListener("click", (e) => {
      const b = e.target.closest("button");
      if (!b) return;
      const ev = b.closest("[data-event]");
      if (b.matches(".arm")) {
        const slot = { kind: b.dataset.kind, i: Number(b.dataset.i) };
        if (b.dataset.j !== undefined) slot.j = Number(b.dataset.j);
        arm(sameSlot(st.armed, slot) ? null : slot);
        if (typeof renderRows === "function") renderRows();
        if (st.armed) $("edit-text").focus();
      } else if (b.matches(".rel-delete")) {
        st.rels.splice(Number(b.closest("[data-rel]").dataset.rel), 1); st.armed = null; renderEditor(); scheduleCheck();
      } else if (b.matches(".event-delete")) {
        st.events.splice(Number(ev.dataset.event), 1); st.armed = null; renderEditor(); scheduleCheck();
      } else if (b.matches(".arg-delete")) {
        st.events[Number(ev.dataset.event)].args.splice(Number(b.closest("[data-arg]").dataset.arg), 1); st.armed = null; renderEditor(); scheduleCheck();
      } else if (b.matches(".arg-add")) {
        addArgument(Number(b.dataset.event), selection());
      } else if (b.id === "edit-add-relation") {
        addRelation(selection());
      } else if (b.id === "edit-add-event") {
        addEvent(selection());
      }
    });
    box.addEventListener("input", (e) => {
      const t = e.target;
      if (t.matches(".slot-text")) {
        const i = Number(t.dataset.i);
        if (t.dataset.kind === "head" || t.dataset.kind === "tail") { st.rels[i][t.dataset.kind] = t.value; st.rels[i].spans[t.dataset.kind] = null; }
        if (t.dataset.kind === "trigger") { st.events[i].trigger = t.value; st.events[i].span = null; }
        if (t.dataset.kind === "arg") { const a = st.events[i].args[Number(t.dataset.j)]; a.text = t.value; a.span = null; }
      }
      if (t.matches(".rel-label")) st.rels[Number(t.closest("[data-rel]").dataset.rel)].relation = t.value;
      if (t.matches(".event-type")) st.events[Number(t.closest("[data-event]").dataset.event)].type = t.value;
      if (t.matches(".arg-role")) st.events[Number(t.closest("[data-event]").dataset.event)].args[Number(t.closest("[data-arg]").dataset.arg)].role = t.value;
      scheduleCheck();
    });
  }

  // The problems of one item, as its row shows them (a mention's row uses it too).
  const problemsOf = (problems, where) => problemHtml(problemsAt(problems || [], where));

  return { has, render, problemsOf, highlighted, open, edited, checked, take, arm, textChanged, slots, wire, fillTextLabel,
    get armed() { return st.armed; }, disarm: () => { st.armed = null; renderEditor(); } };
})();

// -- selection, shared by mentions, relations and events -----------------------------------

const WORD = /[\p{L}\p{N}]/u;
const EDGE = /^[\s\p{P}\p{S}]+|[\s\p{P}\p{S}]+$/gu;

// The selection [from, to) of `value` (UTF-16) as a string to set: spaces and punctuation at
// its edges left out (a drag takes "2015," along), and where words are spaced a piece of a
// word grown to the whole word ("015" in "2015" is "2015": the checks count whole words only).
function snapSelection(value, from, to, spaced) {
  let text = value.slice(from, to);
  const lead = text.length - text.replace(/^[\s\p{P}\p{S}]+/u, "").length;
  const trail = text.length - text.replace(/[\s\p{P}\p{S}]+$/u, "").length;
  let [start, end] = [from + lead, to - trail];
  if (end <= start) return null;
  let snapped = false;
  if (spaced) {
    while (start > 0 && WORD.test(value[start - 1]) && WORD.test(value[start])) { start -= 1; snapped = true; }
    while (end < value.length && WORD.test(value[end]) && WORD.test(value[end - 1])) { end += 1; snapped = true; }
  }
  text = value.slice(start, end);
  return { text, from: start, to: end, snapped };
}

// Touch: the selection is taken once it settles (the handles may still move after the first
// touchend), and handles moved after that keep setting the same string until the selection
// collapses. `take(slot)` sets the armed string (slot: the one to set again) and gives the
// slot it set.
function followTouchSelection(area, take) {
  let touch = false, down = false, timer = null, following = null;
  const settle = () => {
    clearTimeout(timer);
    timer = setTimeout(() => { if (!down) following = take(following); }, SETTLE_MS);
  };
  area.addEventListener("touchstart", () => { touch = true; down = true; clearTimeout(timer); }, { passive: true });
  area.addEventListener("touchend", () => { down = false; settle(); }, { passive: true });
  area.addEventListener("mousedown", (e) => { if (!e.sourceCapabilities || !e.sourceCapabilities.firesTouchEvents) touch = false; });
  area.addEventListener("keydown", () => { touch = false; following = null; });
  const changed = () => {
    if (!touch || document.activeElement !== area) return;
    if (area.selectionEnd <= area.selectionStart) { following = null; clearTimeout(timer); return; }
    settle();
  };
  document.addEventListener("selectionchange", changed);
  area.addEventListener("selectionchange", changed);
  return { forget: () => { following = null; clearTimeout(timer); } };
}
