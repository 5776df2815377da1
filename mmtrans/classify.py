"""`mmtrans classify`: an open-domain text-level label for each record, proposed by the model
and confirmed by a person (how TCONER got its labels).

The proposals live in the store as a run of their own: each record's translation row holds
the record with the proposed label, status `flagged`, problem `proposed_label`. So the review
page queues every proposal as it is (`a` accepts the label, `e` edits it), and `export
--format mre` writes the confirmed records. Requests are cached like translations: the same
command resumes and pays for nothing twice.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import ConnectError, ConnectionDroppedError, FatalModelError, ModelError
from .labels import LabelTable
from .llm import Backend, close_backend
from .payload import extract_json
from .pipeline import Progress, ProgressCallback, Run, make_backend, run_sync
from .prompts import Message
from .records import Record
from .run import Settings, file_hash, read_input
from .scripts import language_name
from .store import Store, Translation, content_key

PROMPT_NAME = "classify"
PROMPT_VERSION = "1"
CODE = "proposed_label"
MAX_LABEL = 60
EXAMPLE_TEXT = ("Popular approaches of opinion-based recommender system utilize various "
                "techniques including text mining , information retrieval , sentiment analysis "
                "and deep learning .")  # CrossNER AI (MIT)
EXAMPLE_LABEL = "Artificial Intelligence"


def messages(record: Record, src: str) -> list[Message]:
    """System instruction, one-shot example, then the record's text as JSON."""
    language = language_name(src)
    system = (
        f"You label {language} texts of an open-domain information-extraction dataset. Give "
        "each text one short text-level label naming its domain or topic (one to three words, "
        f"in {language}, e.g. Artificial Intelligence, Politics, Music, Medicine, Sports). "
        'Answer with one JSON object: {"label": "..."} and nothing else.')
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": json.dumps({"text": EXAMPLE_TEXT})},
        {"role": "assistant", "content": json.dumps({"label": EXAMPLE_LABEL})},
        {"role": "user", "content": json.dumps({"text": record.text}, ensure_ascii=False)},
    ]


def read_label(reply: str) -> str:
    """The label of a reply: `{"label": ...}`, or a reply that is one short line. Raises
    ValueError for anything else."""
    try:
        data = extract_json(reply)
    except ValueError:
        data = None
    if isinstance(data, dict):
        label = data.get("label")
        if not isinstance(label, str) or not label.strip():
            raise ValueError("the reply's 'label' is not a non-empty string")
    else:
        label = reply.strip().strip('"').strip()
        if not label or "\n" in label or "{" in label:
            raise ValueError("the reply is neither {\"label\": ...} nor one short line")
    label = " ".join(label.split())
    if len(label) > MAX_LABEL:
        raise ValueError(f"the label is longer than {MAX_LABEL} characters")
    return label


def proposal(record: Record, reply: str, key: str) -> Translation:
    """The translation row that puts a proposal in front of a reviewer."""
    try:
        label = read_label(reply)
    except ValueError as e:
        return Translation(record.id, 0, "failed", None,
                           [{"code": "format", "message": f"no label: {e}", "where": "label"}],
                           [], key)
    problem = {"code": CODE, "where": "label",
               "message": f"confirm the proposed label {label!r} (a accepts, e edits it)"}
    return Translation(record.id, 0, "flagged", replace(record, label=label), [problem], [], key)


async def _classify(run: Run, records: list[Record]) -> None:
    semaphore = asyncio.Semaphore(max(1, run.settings.concurrency))

    async def one(record: Record) -> None:
        async with semaphore:
            try:
                key, answer = await run._ask(messages(record, run.settings.src))
                row = proposal(record, answer["response"], key)
            except FatalModelError:
                raise
            except ModelError as e:
                if isinstance(e, (ConnectError, ConnectionDroppedError)):  # stays pending
                    run._count("unreachable")
                    return
                row = Translation(record.id, 0, "failed", None,
                                  [{"code": "request", "message": str(e), "where": ""}], [], None)
        run.store.add_translation(run.run_id, row)
        run._count(row.status)

    try:
        await asyncio.gather(*(one(r) for r in records))
    finally:
        await close_backend(run.backend)


def classify(input_path: str | Path, db_path: str | Path, settings: Settings,
             on_progress: ProgressCallback | None = None,
             backend: Backend | None = None) -> dict[str, Any]:
    """Propose a text label for every record of `input_path` into the store at `db_path`.
    `settings.src` is the texts' language (labels come in it too); `tgt` is ignored."""
    backend = backend or make_backend(settings)
    fmt, records, rejects, items_read = read_input(input_path, settings.format)
    settings = replace(settings, tgt=settings.src, repair=0)
    source = str(Path(input_path).resolve())
    config = {
        "input_path": source, "input_hash": file_hash(input_path), "format": fmt,
        "src": settings.src, "tgt": settings.src, "labels": [], "model": backend.model,
        "base_url": backend.endpoint, "prompt_name": PROMPT_NAME,
        "prompt_version": PROMPT_VERSION,
        "prompt_hash": content_key(messages(Record("", ""), settings.src)),
        "strategy": "classify", "params": settings.params.to_dict(),
    }
    with Store(db_path) as store:
        run_id = store.upsert_run(config)
        with store.lock_run(run_id):
            store.add_records(run_id, records, source)
            store.add_rejects(run_id, rejects)
            store.set_items_read(run_id, items_read)
            chosen = records[: settings.limit] if settings.limit is not None else records
            done = store.done_ids(run_id)
            pending = [r for r in chosen if r.id not in done]
            progress = Progress(total=len(pending))
            run = Run(store, run_id, backend, {}, LabelTable(Path(), {}), settings, progress,
                      on_progress)
            if on_progress:
                on_progress(progress)
            run_sync(_classify(run, pending))
        return {"run_id": run_id, "skipped": len(chosen) - len(pending),
                "rejects": len(rejects),
                **{k: v for k, v in vars(progress).items() if k not in ("in_flight", "note")}}
