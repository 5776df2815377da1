"""The store's schema: an ordered list of named migrations, each applied once and recorded
in `_sqlite_migrations` (sqlite-utils' `Migrations`, as simonw/llm keeps its own). A change
of schema is a new function at the end, never an edit of an old one: the names are what
existing stores have recorded.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils
from sqlite_utils import Migrations

migrations = Migrations("mmtrans")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db["runs"].create(
        {"id": str, "input_path": str, "input_hash": str, "format": str, "src": str,
         "tgt": str, "labels": str, "model": str, "base_url": str, "prompt_name": str,
         "prompt_version": str, "strategy": str, "params": str, "created": str},
        pk="id",
    )
    db["records"].create(
        {"run_id": str, "id": str, "position": int, "source": str},
        pk=("run_id", "id"),
    )
    db["records"].create_index(["run_id", "position"])
    db["requests"].create(
        {"key": str, "model": str, "base_url": str, "messages": str, "params": str,
         "response": str, "tokens_in": int, "tokens_out": int, "latency": float,
         "attempts": int, "error": str, "created": str},
        pk="key",
    )
    db["translations"].create(
        {"id": int, "run_id": str, "record_id": str, "attempt": int, "request_key": str,
         "status": str, "target": str, "problems": str, "notes": str, "created": str},
        pk="id",
    )
    db["translations"].create_index(["run_id", "record_id"])
    db["reviews"].create(
        {"id": int, "run_id": str, "record_id": str, "annotator": str, "decision": str,
         "record": str, "created": str},
        pk="id",
    )
    db["reviews"].create_index(["run_id", "record_id"])
    db["rejects"].create(
        {"id": int, "run_id": str, "path": str, "line": int, "error": str, "created": str},
        pk="id",
    )
    db["rejects"].create_index(["run_id", "path", "line"], unique=True)


@migrations()
def m002_review_undo(db: sqlite_utils.Database) -> None:
    """An undo is a review row of its own pointing at the decision it takes back."""
    db["reviews"].add_column("undoes", int)


@migrations()
def m003_integrity(db: sqlite_utils.Database) -> None:
    """Run identity by content (`config`), the run last used, which file each record and
    reject came from, several rejects per line (one per item), and items read per file."""
    db["runs"].add_column("config", str)
    db["runs"].add_column("last_used", str)
    db["runs"].add_column("locked_by", str)
    db["records"].add_column("path", str)
    db["rejects"].add_column("item", int)
    db.execute("drop index if exists idx_rejects_run_id_path_line")
    db["rejects"].create_index(["run_id", "path", "line", "item"], unique=True)
    db["inputs"].create({"run_id": str, "path": str, "items": int}, pk=("run_id", "path"))


@migrations()
def m004_review_translation(db: sqlite_utils.Database) -> None:
    """A review row names the translation row it judged, so export writes what was
    reviewed even when a later attempt exists, and a reason when one was given."""
    db["reviews"].add_column("translation_id", int)
    db["reviews"].add_column("reason", str)


@migrations()
def m005_batch_requests(db: sqlite_utils.Database) -> None:
    """Requests written to a batch file (vLLM run-batch, OpenAI Batch), by cache key: what
    an imported answer was asked, so it lands in the request cache like any other."""
    db["batch_requests"].create({"key": str, "body": str, "file": str, "created": str},
                                pk="key")


@migrations()
def m006_openai_batches(db: sqlite_utils.Database) -> None:
    """OpenAI Batch jobs a store submitted, and which batch each written request went in,
    so that submitting again never sends a request a batch still holds."""
    db["batches"].create({"id": str, "file": str, "status": str, "created": str,
                          "collected": int}, pk="id")
    db["batch_requests"].add_column("batch_id", str)


@migrations()
def m300_shared_prompt_prefix(db: sqlite_utils.Database) -> None:
    """A prompt's fixed part (system text and one-shot example, four fifths of a request's
    bytes) is stored once in `prompt_prefixes`; a request row names it by hash and keeps only
    the messages after it. Rows stored before keep their whole messages (prefix null)."""
    db["prompt_prefixes"].create({"hash": str, "messages": str}, pk="hash")
    db["requests"].add_column("prefix", str)


@migrations()
def m007_review_adjudicated(db: sqlite_utils.Database) -> None:
    """A decision made in `review --adjudicate` settles a disagreement: it is the final
    version, and it is no annotator's vote in the agreement figures."""
    db["reviews"].add_column("adjudicated", int)


@migrations()
def m008_request_claims(db: sqlite_utils.Database) -> None:
    """A request one process is asking right now, so another process needing the same
    answer waits for it to land in the cache instead of paying for it again. A claim whose
    owner died (same host, pid gone) or whose time ran out is taken over."""
    db["claims"].create({"key": str, "host": str, "pid": int, "token": str, "expires": float},
                        pk="key")



@migrations()
def m009_batch_uploads(db: sqlite_utils.Database) -> None:
    """Files uploaded for an OpenAI batch, recorded before their batch is created, so a
    create whose answer was lost (or a submit killed during it) is found again by its input
    file instead of being made twice; which upload each written request went in; the
    endpoint of each batch. Batches submitted before are their own uploads."""
    db["batch_uploads"].create({"file_id": str, "endpoint": str, "uploaded_at": int,
                                "batch_id": str, "released": int, "created": str},
                               pk="file_id")
    db["batch_requests"].add_column("upload", str)
    db["batches"].add_column("endpoint", str)
    db.execute("insert or ignore into batch_uploads (file_id, batch_id, released, created) "
               "select file, id, 0, created from batches where file is not null")
    db.execute("update batch_requests set upload = (select file from batches "
               "where batches.id = batch_requests.batch_id) where batch_id is not null")


@migrations()
def m010_review_team(db: sqlite_utils.Database) -> None:
    """How a team reviews a run (`review_plans`: how many annotators decide each record
    blind, and who gets which records), kept in the store so every review server and every
    export reads the same plan; and comments on records (`comments`), each kept with the
    decision it was made with, if any."""
    db["review_plans"].create({"run_id": str, "overlap": int, "assign": str, "created": str},
                              pk="run_id")
    db["comments"].create({"id": int, "run_id": str, "record_id": str, "annotator": str,
                           "text": str, "review_id": int, "created": str}, pk="id")
    db["comments"].create_index(["run_id", "record_id"])
    db["reviews"].create_index(["run_id", "annotator"])

@migrations()
def m011_review_queue(db: sqlite_utils.Database) -> None:
    """The review queue as a table the page reads a page at a time: each record's latest
    translation (its status and problem codes) in a narrow row, and its source and
    translated text in a trigram full-text index (`review_search`, same rowid) that answers
    a substring search without reading every text. The queue is kept by a trigger on
    `translations`, so a queue of a million records is paged, counted and filtered by SQL
    instead of being rebuilt in Python on every read; the search index is brought up to date
    by whoever searches (`searched`: the translation whose text it holds), in one bulk
    insert, as a full-text insert per translation would cost a run more than the rest of
    storing it. An index for the annotator filter."""
    db.execute("""create table review_queue (
        run_id text not null, record_id text not null, position integer not null,
        translation_id integer not null, status text not null,
        -- 0: flagged or failed (reviewed first), 1: accepted (only a spot check shows it)
        kind integer not null,
        codes text not null,  -- ',code,code,' (sorted, each once)
        searched integer not null default 0,  -- the translation review_search holds
        primary key (run_id, record_id))""")
    db.execute("create index review_queue_order on review_queue (kind, run_id, position)")
    # The few distinct sets of codes, found by seeking from one to the next (not by reading
    # every row), and the rows holding each.
    db.execute("create index review_queue_codes on review_queue (run_id, codes, kind)")
    db.execute("create index review_queue_unsearched on review_queue (searched) "
               "where searched != translation_id")
    db.execute("create virtual table review_search using fts5(text, tokenize = 'trigram', "
               "detail = 'none')")
    db.execute("create index reviews_annotator on reviews (annotator, run_id, record_id)")
    codes = """coalesce((select ',' || group_concat(code, ',') || ',' from (
        select distinct json_extract(value, '$.code') as code
        from json_each(coalesce({problems}, '[]')) order by code)), '')"""
    db.execute(f"""create trigger review_queue_latest after insert on translations begin
        insert into review_queue (run_id, record_id, position, translation_id, status, kind,
                                  codes)
        values (NEW.run_id, NEW.record_id,
                coalesce((select position from records
                          where run_id = NEW.run_id and id = NEW.record_id), 0),
                NEW.id, NEW.status, NEW.status = 'accepted',
                {codes.format(problems="NEW.problems")})
        on conflict (run_id, record_id) do update set translation_id = excluded.translation_id,
            status = excluded.status, kind = excluded.kind, codes = excluded.codes
        where excluded.translation_id > review_queue.translation_id;
    end""")
    # The translations already stored: each record's latest.
    db.execute(f"""insert into review_queue (run_id, record_id, position, translation_id,
                                          status, kind, codes)
        select t.run_id, t.record_id, coalesce(r.position, 0), t.id, t.status,
        t.status = 'accepted', {codes.format(problems="t.problems")}
        from translations t left join records r on r.run_id = t.run_id and r.id = t.record_id
        where t.id in (select max(id) from translations group by run_id, record_id)""")


#: The table sqlite-utils records applied migrations in.
APPLIED = "_sqlite_migrations"


def pending(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this store has not had yet, read without writing anything
    (`Migrations.pending` creates its table when missing)."""
    applied = {row[0] for row in conn.execute(
        f"select name from {APPLIED} where migration_set = ?", [migrations.name])}
    return [m.name for m in migrations._migrations if m.name not in applied]
