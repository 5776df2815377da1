"""The `mmtrans` command: options in, one library call, rich output. No logic lives here."""

from __future__ import annotations

import atexit
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from . import pipeline
from .errors import FatalModelError, MmtransError
from .export import SKIP_REASONS
from .export import export as export_run
from .fidelity import make_checker
from .files import check_output, write_output
from .formats import check_input
from .llm import Params
from .run import Settings
from .run import translate as translate_run
from .store import Store
from .verify import check_files

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Translate annotated IE datasets with an LLM, keeping every span true.")
# Markup off by default: paths, labels, texts and error messages are data ("train[1].json",
# "mmtrans[fidelity]" lost their brackets). A line that styles a word says markup=True and
# escapes what it puts in.
console = Console(stderr=True, markup=False)
out = Console(markup=False)

Db = Annotated[Path, typer.Option("--db", help="The run's SQLite file.")]
Src = Annotated[str, typer.Option("--src", metavar="LANG",
    help="Source language (ja, zh, en, ...).")]
Tgt = Annotated[str, typer.Option("--tgt", metavar="LANG", help="Target language.")]
Labels = Annotated[list[str], typer.Option(
    "--labels", metavar="TABLE",
        help="Label table or .tsv (repeatable); default: the pair's table that fits.")]
Input = Annotated[Path, typer.Argument(metavar="INPUT", help="Input file (format auto-detected).")]
NoFidelity = Annotated[bool, typer.Option(
    "--no-fidelity", help="Skip the fidelity check (content added or dropped).")]
EmbeddingsUrl = Annotated[str | None, typer.Option(
    metavar="URL", help="OpenAI-compatible /v1/embeddings server for the fidelity check "
                        "(default: the in-process model of the `fidelity` extra).")]
EmbeddingsModel = Annotated[str | None, typer.Option(
    metavar="NAME", help="Embedding model at --embeddings-url (default: the one it lists).")]
Model = Annotated[str | None, typer.Option(metavar="NAME", help="Model name.")]
InputFormat = Annotated[str | None, typer.Option("--format", metavar="NAME", help="Input format.")]
PromptName = Annotated[str | None, typer.Option(metavar="NAME", help="Prompt name or .toml file.")]
Repair = Annotated[int, typer.Option(min=0, help="Follow-up turns for a flagged record.")]
Limit = Annotated[int | None, typer.Option(min=0, help="Only the first N records.")]
BaseUrl = Annotated[str | None, typer.Option(metavar="URL",
    help="API base URL (default: OpenAI's).")]
ApiKey = Annotated[str | None, typer.Option(metavar="KEY", help="API key (or OPENAI_API_KEY).")]
Local = Annotated[bool, typer.Option(
    "--local", help="Run a GGUF model in-process (extra local).")]
LocalModel = Annotated[Path | None, typer.Option(metavar="FILE", help="GGUF file for --local.")]
Temperature = Annotated[float, typer.Option(help="Sampling temperature.")]
Seed = Annotated[int | None, typer.Option(help="Sampling seed, for servers that take one.")]
MaxTokens = Annotated[int | None, typer.Option(help="Most tokens per answer.")]
Force = Annotated[bool, typer.Option(
    "--force", help="Replace output files that exist (never the run's input).")]


class WaitingColumn(ProgressColumn):
    """Why the run waits, read afresh at every refresh (a hanging server shows at once)."""

    def __init__(self, text: Callable[[], str]):
        super().__init__()
        self.text = text

    def render(self, task: object) -> Text:
        return Text(self.text(), style="yellow")


def sigterm_interrupts() -> list[int]:
    """SIGTERM stops a run as Ctrl-C does: it becomes SIGINT, so asyncio cancels the
    requests in flight and every answer already received stays in the store. The list
    returned notes that it came."""
    came: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        came.append(signum)
        signal.raise_signal(signal.SIGINT)

    # A process started with `&` by a script has SIGINT ignored: SIGTERM must still stop it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    return came


#: How an error a user may meet is shown: the word before its one line, and the exit
#: status; the nearest class in the error's ancestry decides.
ERROR_LINES: dict[type[Exception], tuple[str, int]] = {
    FatalModelError: ("stopped", 2),  # no quota, key refused, no such model, server down
    MmtransError: ("error", 2),
}


def settings_from(src: str, tgt: str, **options: Any) -> Settings:
    """A run's Settings from a command's options, by name: every command builds its Settings
    here. `temperature`, `seed` and `max_tokens` become Params, a GGUF path a string, and
    --base-url and --api-key fall back on OPENAI_BASE_URL and OPENAI_API_KEY."""
    params = Params(options.pop("temperature", 0.0), options.pop("seed", None),
                    options.pop("max_tokens", None))
    if options.get("local_model") is not None:
        options["local_model"] = str(options["local_model"])
    for name, variable in (("base_url", "OPENAI_BASE_URL"), ("api_key", "OPENAI_API_KEY")):
        if name in options and not options[name]:
            options[name] = os.environ.get(variable) or None
    return Settings(src=src, tgt=tgt, params=params, **options)


def fail(error: Exception) -> typer.Exit:
    """Print `error` as one line and give the exit its status (ERROR_LINES)."""
    word, status = next((ERROR_LINES[c] for c in type(error).__mro__ if c in ERROR_LINES),
                        ("error", 2))
    console.print(f"[red]{word}:[/red] {escape(str(error))}", highlight=False, soft_wrap=True,
                  markup=True)
    return typer.Exit(status)


@app.command(short_help="Translate a dataset into the store (or resume its run).")
def translate(
    input: Input,
    src: Src,
    tgt: Tgt,
    labels: Labels = [],  # noqa: B006 (typer reads the default)
    db: Db = Path("mmtrans.db"),
    model: Model = None,
    base_url: Annotated[str | None, typer.Option(
        metavar="URL",
            help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (or OPENAI_BASE_URL)."
    )] = None,
    api_key: Annotated[str | None, typer.Option(metavar="KEY",
        help="API key (or OPENAI_API_KEY).")] = None,
    local: Local = False,
    local_model: LocalModel = None,
    format: InputFormat = None,
    prompt: PromptName = None,
    concurrency: Annotated[int, typer.Option(
        min=1, help="Most requests in flight (fewer when the server's limits need fewer)."
    )] = 32,
    rpm: Annotated[float | None, typer.Option(
        min=1, help="Requests per minute the server allows (default: read from its "
                    "x-ratelimit headers).")] = None,
    tpm: Annotated[float | None, typer.Option(
        min=1, help="Tokens per minute the server allows (default: from its headers).")] = None,
    temperature: Temperature = 0.0,
    seed: Seed = None,
    max_tokens: MaxTokens = None,
    limit: Limit = None,
    repair: Repair = 2,
    strategy: Annotated[str, typer.Option(
        help="default: text and strings sent apart (MMM); tagged: strings tagged in the text."
    )] = "default",
    timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds to wait for one answer before retrying.")] = 60.0,
    max_attempts: Annotated[int, typer.Option(
        min=1, help="Attempts per request (429, 5xx, timeouts, empty answers).")] = 6,
    pack: Annotated[int, typer.Option(
        min=1, help="Records per request for first answers (one instruction and example "
                    "for K records; repair turns go one by one).")] = 1,
    check_processes: Annotated[int | None, typer.Option(
        min=0, show_default="1 where the run may use two cores or more and can fork (Linux), "
                                "else 0",
        help="Processes that run the checks of the answers beside the run's own "
             "(0: in it).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Render and price the requests; send none, write nothing.")] = False,
    price_in: Annotated[float | None, typer.Option(
        min=0, help="US$ per million input tokens (default: data/prices).")] = None,
    price_out: Annotated[float | None, typer.Option(
        min=0, help="US$ per million output tokens (default: data/prices).")] = None,
    no_fidelity: NoFidelity = False,
    embeddings_url: EmbeddingsUrl = None,
    embeddings_model: EmbeddingsModel = None,
) -> None:
    """Translate INPUT into the store; the same command resumes an interrupted run.

    Exit status: 0 when every record was translated (accepted or flagged), 1 when any
    failed, 2 for bad input or settings, or when the run stopped because it cannot go on
    (no quota, key refused, unknown model, server down or silent)."""
    settings = settings_from(
        src, tgt, labels=labels, model=model, base_url=base_url, api_key=api_key, local=local,
        local_model=local_model, concurrency=concurrency, rpm=rpm, tpm=tpm,
        temperature=temperature, seed=seed, max_tokens=max_tokens, prompt=prompt,
        format=format, limit=limit, repair=repair, strategy=strategy, timeout=timeout,
        max_attempts=max_attempts, pack=pack, check_processes=check_processes,
        dry_run=dry_run, price_in=price_in,
        price_out=price_out, fidelity=not no_fidelity, embeddings_url=embeddings_url,
        embeddings_model=embeddings_model)
    progress: list[pipeline.Progress] = []
    columns = (TextColumn("[bold]translating"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
               WaitingColumn(lambda: progress[0].waiting(timeout) if progress else ""))
    bar = Progress(*columns, console=console)
    task = bar.add_task("translate", total=None, stats="")

    shown_at = [float("-inf")]

    def show(p: pipeline.Progress) -> None:
        # Called for every record, but the bar is drawn ten times a second: it is updated
        # as often (and at the last record), which was 1.5% of a packed run's CPU.
        now = time.monotonic()
        if now - shown_at[0] < 0.1 and p.done != p.total:
            return
        shown_at[0] = now
        progress[:] = [p]
        bar.start()  # only once the input has been read and checked: errors print alone
        stats = (f"[green]{p.accepted} accepted[/] [yellow]{p.flagged} flagged[/] "
                 f"[red]{p.failed} failed[/] {p.tokens} tokens")
        bar.update(task, total=p.total, completed=p.done, stats=stats)

    def notice(text: str) -> None:
        console.print(f"[yellow]note:[/] {escape(text)}", highlight=False, markup=True)

    terminated = sigterm_interrupts()
    try:
        result = translate_run(input, db, settings, on_progress=show, on_notice=notice)
    except MmtransError as e:
        bar.stop()  # the line stands alone, not inside the progress bar
        raise fail(e) from None
    except KeyboardInterrupt:
        bar.stop()
        how = "terminated (SIGTERM)" if terminated else "interrupted"
        console.print(f"{how}; run the same command again to resume", highlight=False)
        raise typer.Exit(143 if terminated else 130) from None
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        bar.stop()
    if "estimate" in result:
        print_estimate(result["estimate"])
        return
    for line in result["reject_lines"]:
        console.print(f"[yellow]unreadable:[/] {escape(line)}", highlight=False, markup=True)
    if result["rejects"] > len(result["reject_lines"]):
        console.print(f"... and {result['rejects'] - len(result['reject_lines'])} more: "
                      "see the store's rejects table", highlight=False)
    held = f", {result['deferred']} held by a batch" if result["deferred"] else ""
    console.print(
        f"{result['done'] - result['deferred']} translated ({result['accepted']} accepted, "
        f"{result['flagged']} flagged, {result['failed']} failed){held}, "
        f"{result['skipped']} already done, "
        f"{result['requests_sent']} requests sent, {result['rejects']} unreadable input "
        f"item(s). Run {result['run_id']} in {db}", highlight=False)
    unfinished = result["failed"] + result["unreachable"]
    if unfinished:
        console.print(f"[red]{unfinished} record(s) failed[/red]: run the same command again "
                      "to retry them", highlight=False, markup=True)
        raise typer.Exit(1)


def print_estimate(e: dict) -> None:
    """A dry run's figures, one per line."""
    def dollars(value: float | None) -> str:
        return f"${value:,.2f}" if value is not None else "no price for this model " \
            "(add it to data/prices, or pass --price-in and --price-out)"

    out.print(f"dry run for {e['model']}: nothing was sent, and nothing written to the "
              "store\n"
              f"requests to send   {e['requests']:,} ({e['cached']:,} already answered or "
              f"repeated)\n"
              f"input tokens       {e['tokens_in']:,}  ({e['method']})\n"
              f"output tokens      ~{e['tokens_out']:,}  (estimated from "
              f"{e['output_method']})\n"
              f"cost               {dollars(e['cost'])}\n"
              f"cost as a batch    {dollars(e['batch_cost'])}\n"
              f"not counted: up to {e['repair_turns_not_counted']} repair turn(s) per flagged "
              "record", highlight=False, soft_wrap=True)


RunOption = Annotated[str | None, typer.Option(
    "--run", metavar="ID",
        help="Run id or a unique prefix (default: the run last used; see `mmtrans runs`).")]


@app.command(short_help="Propose a text label per record, for reviewers (TCONER).")
def classify(
    input: Input,
    src: Annotated[str, typer.Option("--src", metavar="LANG",
        help="Language of the texts (and labels).")],
    db: Db = Path("mmtrans.db"),
    model: Model = None,
    base_url: Annotated[str | None, typer.Option(metavar="URL",
        help="OpenAI-compatible server.")] = None,
    api_key: Annotated[str | None, typer.Option(metavar="KEY",
        help="API key (or OPENAI_API_KEY).")] = None,
    local: Local = False,
    local_model: LocalModel = None,
    format: InputFormat = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Most requests in flight.")] = 8,
    limit: Limit = None,
) -> None:
    """Propose an open-domain text label per record, for reviewers to confirm (TCONER).

    Exit status: 0 when every record got a label, 1 when any failed, 2 for bad input."""
    from .classify import classify as classify_records

    settings = settings_from(
        src, src, model=model, base_url=base_url, api_key=api_key, local=local,
        local_model=local_model, concurrency=concurrency, format=format, limit=limit, repair=0)
    bar = Progress(TextColumn("[bold]labelling"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=console)
    task = bar.add_task("classify", total=None)

    def show(p: pipeline.Progress) -> None:
        bar.start()
        bar.update(task, total=p.total, completed=p.done)

    try:
        result = classify_records(input, db, settings, on_progress=show)
    except MmtransError as e:
        raise fail(e) from None
    finally:
        bar.stop()
    console.print(
        f"{result['flagged']} label(s) proposed, {result['failed']} failed, "
        f"{result['skipped']} already done. Confirm them with `mmtrans review --db {db}`, then "
        f"`mmtrans export --db {db} --run {result['run_id']} --format mre --out FILE`.",
        highlight=False)
    unfinished = result["failed"] + result.get("unreachable", 0)
    if unfinished:
        console.print(f"[red]{unfinished} record(s) failed[/red]: run the same command again "
                      "to retry them", highlight=False, markup=True)
        raise typer.Exit(1)


@app.command(short_help="One run's accounting: records, problems, tokens, cost.")
def status(
    db: Db = Path("mmtrans.db"),
    run: RunOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """One run's accounting: items read, records by status, problems, tokens."""
    from .report import status as run_status
    from .review.agreement import agreement_line

    try:
        summary = run_status(db, run)
    except MmtransError as e:
        raise fail(e) from None
    if as_json:
        out.print_json(json.dumps(summary, ensure_ascii=False))
        return
    rows: list[tuple[str, str]] = [
        ("records", f"{summary['records']}: {summary['accepted']} accepted, "
                    f"{summary['flagged']} flagged, {summary['failed']} failed, "
                    f"{summary['pending']} pending")]
    for f in summary["files"]:
        sums = f"{f['records']} records + {f['rejects']} unreadable"
        rows.append(("file", f["path"]))
        rows.append(("", f"{f['items_read']} items read = {sums}" if f["ok"] else
                     Text(f"{f['items_read']} items read, but {sums}: items are missing",
                          style="red")))
    cost = "no listed price" if summary["cost_usd"] is None else f"${summary['cost_usd']}"
    rows.append(("requests", f"{summary['requests']}: {summary['tokens_in']} tokens in, "
                             f"{summary['tokens_out']} out ({cost})"))
    for attempt, row in summary["attempts"].items():
        what = "first answers" if attempt == "0" else f"repair {attempt}"
        rows.append((what, f"{row['accepted']} accepted of {row['translations']} made "
                           f"({row['tokens']} tokens)"))
    for code, n in summary["problems"].items():
        rows.append(("problem", f"{code}: {n}"))
    reviews = summary["reviews"]
    rows.append(("reviewed", ", ".join(f"{n} {what}" for what, n in reviews.items())))
    for reason, n in summary["reject_reasons"].items():
        rows.append(("", f"rejected as {reason}: {n}"))
    if summary["agreement"]:
        rows.append(("disagreements", f"{summary['disagreements']} open"))
    for pair in summary["agreement"]:
        rows.append(("agreement", f"{pair['a']} / {pair['b']}: {agreement_line(pair)}"))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, text in rows:
        table.add_row(label, text)
    out.print(f"[bold]{escape(str(db))}[/]: run {summary['run']} ({escape(str(summary['model']))})",
              highlight=False, markup=True)
    out.print(table, highlight=False)
    if not all(f["ok"] for f in summary["files"]):
        console.print("[red]items read and items stored differ[/red]: see the files above",
                      highlight=False, markup=True)


@app.command(short_help="The store's runs with their settings and counts.")
def runs(
    db: Db = Path("mmtrans.db"),
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list.")] = False,
) -> None:
    """The store's runs, last used first, with their settings and counts."""
    try:
        with Store(db, create=False) as store:
            rows = store.runs()
    except MmtransError as e:
        raise fail(e) from None
    if as_json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    # One block per run: a table of eleven columns cannot be read at 80 columns.
    for n, r in enumerate(rows):
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        table.add_row("dataset", r["dataset"])
        table.add_row("input", f"{r['input']} ({r['format']})")
        table.add_row("languages", f"{r['src']} -> {r['tgt']}")
        table.add_row("model", f"{r['model']} at {r['endpoint']}")
        table.add_row("prompt", f"{r['prompt']} ({r['strategy']})")
        table.add_row("records", f"{r['records']}: {r['accepted']} accepted, {r['flagged']} "
                                 f"flagged, {r['failed']} failed, {r['pending']} pending")
        if n:
            out.print()
        used = (r["last_used"] or r["created"] or "")[:16].replace("T", " ")
        out.print(f"[bold]run {r['id']}[/]  last used {used} UTC", highlight=False, markup=True)
        out.print(table, highlight=False)
    if not rows:
        console.print(f"{db} holds no run yet", highlight=False)


@app.command(short_help="Write the kept translations to a file (or training files).")
def export(
    out_path: Annotated[Path, typer.Option("--out", help="Output file (.jsonl: JSON Lines).")],
    db: Db = Path("mmtrans.db"),
    format: Annotated[str | None, typer.Option("--format", help="Default: the input's.")] = None,
    run: RunOption = None,
    include_flagged: Annotated[bool, typer.Option(
        "--include-flagged", help="Also records the checks flagged and no reviewer decided "
                                  "on (a reviewer's reject still wins).")] = False,
    include_overridden: Annotated[bool, typer.Option(
        "--include-overridden",
        help="Also records a reviewer kept with open problems (never with broken spans).")
    ] = False,
    force: Force = False,
    as_: Annotated[str | None, typer.Option(
        "--as", help="Training files in --out (a folder), one per dataset and language: "
                     "oiellm, iepile-instruction or hf.")] = None,
    split_num: Annotated[int | None, typer.Option(
        help="iepile-instruction: schema labels a batch (default NER 6, RE/EE 4).")] = None,
    hard_negatives: Annotated[Path | None, typer.Option(
        help="iepile-instruction: hard-negative dictionary (IEPile's JSON form).")] = None,
    neg_ratio: Annotated[float, typer.Option(
        help="iepile-instruction: share of the other labels sampled as negatives.")] = 1.0,
    seed: Annotated[int, typer.Option(help="iepile-instruction and hf: sampling seed.")] = 0,
    test_form: Annotated[bool, typer.Option(
        "--test-form", help="iepile-instruction: IEPile's test lines {id, instruction, "
                            "label}, every label asked, for `mmtrans eval`.")] = False,
    train: Annotated[list[str], typer.Option(
        "--train", metavar="N|NAME=N",
            help="hf: train size, N or NAME=N; the rest is the test split.")] = [],  # noqa: B006
) -> None:
    """Write the accepted translations (and flagged ones, if asked) to a file."""
    if as_ is not None:
        export_training(db, out_path, as_, run, include_flagged, split_num, hard_negatives,
                        neg_ratio, seed, train, test_form, force)
        return
    try:
        result = export_run(db, out_path, format, run, include_flagged, include_overridden,
                            force)
    except MmtransError as e:
        raise fail(e) from None
    console.print(f"{result.written} record(s) written to {result.path} ({result.format}); "
                  f"{result.skipped} not exported{':' if result.skipped else '.'}",
                  highlight=False, soft_wrap=True)
    for reason, n in result.reasons.items():
        console.print(f"  {n} {SKIP_REASONS[reason]}", highlight=False, soft_wrap=True)
    if result.unplaced:
        console.print(f"{result.unplaced} record(s) with a string not in their text written to "
                      f"{result.unplaced_path} (no offset for it: see README, Exports)",
                      highlight=False, soft_wrap=True)


def export_training(db: Path, out_dir: Path, kind: str, run: str | None,
                    include_flagged: bool, split_num: int | None, hard_negatives: Path | None,
                    neg_ratio: float, seed: int, train: list[str], test_form: bool,
                    force: bool) -> None:
    """`export --as`: one library call per kind of training file."""
    from .export import export_as
    from .split import parse_sizes

    try:
        written = export_as(db, out_dir, kind, run, include_flagged, force,
                            split_num=split_num, hard_negatives=hard_negatives,
                            neg_ratio=neg_ratio, seed=seed, sizes=parse_sizes(train),
                            test_form=test_form)
    except MmtransError as e:
        raise fail(e) from None
    for w in written:
        console.print(f"{w.dataset} ({w.language}): {w.records} line(s) in {w.path}",
                      highlight=False)


@app.command()
def check(
    source: Annotated[Path, typer.Argument(metavar="SOURCE", help="Source file.")],
    target: Annotated[Path, typer.Argument(metavar="TARGET",
        help="Translated file, record for record.")],
    src: Src,
    tgt: Tgt,
    labels: Labels = [],  # noqa: B006 (typer reads the default)
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per record.")] = False,
    no_fidelity: NoFidelity = False,
    embeddings_url: EmbeddingsUrl = None,
    embeddings_model: EmbeddingsModel = None,
) -> None:
    """Check a translated file against its source without any model. Exit 1 if any is flagged."""
    flagged = total = 0
    try:
        for path in (source, target):  # before the embedding model loads
            check_input(path)
        checker = make_checker(src, tgt, not no_fidelity, embeddings_url, embeddings_model,
                               on_notice=lambda text: console.print(f"note: {text}",
                                                                    highlight=False))
        checked = check_files(source, target, src, tgt, labels, fidelity=checker)
        for note in checked.notes:
            console.print(note, highlight=False, markup=False)
        for verdict in checked:
            total += 1
            flagged += not verdict.ok
            if as_json:
                print(json.dumps(verdict.to_dict(), ensure_ascii=False))
            elif not verdict.ok:
                for p in verdict.problems:
                    where = target if verdict.line is None else f"{target}:{verdict.line}"
                    out.print(f"{where}: {verdict.id}: [{p.code}] {p.message}",
                              highlight=False, markup=False)
    except MmtransError as e:
        raise fail(e) from None
    if not as_json:
        console.print(f"{total - flagged} of {total} record(s) pass; {flagged} flagged.")
    raise typer.Exit(1 if flagged else 0)


@app.command(short_help="Serve the review page: accept, edit or reject records.")
def review(
    db: Db = Path("mmtrans.db"),
    host: Annotated[str, typer.Option(help="Address; non-local ones need a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8700,
    token: Annotated[str | None, typer.Option(help="Required on every request.")] = None,
    annotator: Annotated[str | None, typer.Option(help="Your name (else the page asks).")] = None,
    spot_check: Annotated[str | None, typer.Option(
        help="Also queue this share of accepted records, e.g. 5%.")] = None,
    run: RunOption = None,
    guidelines: Annotated[Path | None, typer.Option(
        help="The project's guidelines (Markdown), shown in a panel (g).")] = None,
    reasons: Annotated[str | None, typer.Option(
        help="Reject reasons to pick from: comma-separated, or a file with one per line.")] = None,
    adjudicate: Annotated[bool, typer.Option(
        "--adjudicate",
        help="See every annotator's version side by side and decide the final one.")] = False,
    overlap: Annotated[int | None, typer.Option(
        help="Annotators who decide each record, blind to each other (default: the plan "
             "kept in the store, else 1: one shared queue).")] = None,
    assign: Annotated[str | None, typer.Option(
        help="Who gets which records: all, shares (aiko=2,ben=1) or datasets "
             "(aiko=ner.json,ben=re.json). Default: the plan kept in the store, else all.")] = None,
) -> None:
    """Serve the review page for one run: accept, edit or reject flagged records."""
    from .review import access_token, page_url, parse_share, serve, team

    try:
        share = parse_share(spot_check)
        required = access_token(host, token)
        settings = team(guidelines, reasons, adjudicate, overlap, assign)
        with Store(db, create=False) as store:
            run_id = store.resolve_run(run)
    except MmtransError as e:
        raise fail(e) from None
    if required and not token:
        console.print(f"generated token: {required}", highlight=False)
    console.print(f"reviewing run {run_id} of {db} at {page_url(host, port, required)} "
                  "(Ctrl-C to stop)", highlight=False, soft_wrap=True)
    serve(db, host, port, required, annotator, share, run_id, settings)


@app.command("split", short_help="Write train and test files from dataset files.")
def split_(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...",
        help="Dataset files (any format).")],
    train: Annotated[list[str], typer.Option(
        "--train", metavar="N|NAME=N",
            help="Train size: N for every file, or NAME=N for one (repeatable).")],
    seed: Annotated[int, typer.Option(help="Shuffle seed; the same seed, the same split.")] = 0,
    out_dir: Annotated[Path | None, typer.Option(
        help="Where to write (default: beside each file).")] = None,
    force: Force = False,
) -> None:
    """Write <name>.train and <name>.test files: N records to train, the rest to test."""
    from .split import parse_sizes, size_for, split

    try:
        default, named = parse_sizes(train)
        sizes = [size_for(f, default, named) for f in files]
        for path, size in zip(files, sizes):
            result = split(path, size, seed, out_dir, force=force)
            console.print(f"{path}: {result.train} to {result.train_path}, {result.test} to "
                          f"{result.test_path}", highlight=False)
    except MmtransError as e:
        raise fail(e) from None


@app.command("stats", short_help="Kept records per dataset and language, and why not.")
def stats_(
    db: Db = Path("mmtrans.db"),
    run: Annotated[str | None, typer.Option(
        help="Run id (default: the latest run of every input and language).")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="A Markdown table.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Also write a PNG: kept % and problems by code.")] = None,
    force: Force = False,
) -> None:
    """Per dataset and language: read, accepted, flagged, repaired, reviewed, kept %."""
    from .stats import COLUMNS, stats
    from .stats import plot as write_plot

    try:
        result = stats(db, run)
        if plot:
            write_plot(result, plot, force)
    except MmtransError as e:
        raise fail(e) from None
    if as_json:
        out.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
    elif markdown:
        print(result.markdown(), end="")
    else:
        table = Table(title=str(db), box=None, padding=(0, 1, 0, 0), pad_edge=False)
        headers = ("dataset", "lang", "read", "acc", "flag", "fail", "pend", "rep", "r-acc",
                   "r-ed", "r-rej", "kept", "kept%")
        for column, header in zip(COLUMNS, headers):
            # the dataset's name folds, so that the figures fit 80 columns
            wraps = column == "dataset"
            table.add_column(header, no_wrap=not wraps, overflow="fold" if wraps else "ellipsis",
                             min_width=10 if wraps else len(header),
                             justify="left" if column in ("dataset", "language") else "right")
        for row in [*result.rows, result.total]:
            values = row.to_dict()
            table.add_row(*(str(values[c]) for c in COLUMNS))
        out.print(table)
        for code, n in result.total.problems.most_common():
            out.print(f"problem {code}: {n}", highlight=False)
        out.print("acc/flag/fail/pend: latest translation status; rep: accepted at a repair "
                  "turn; r-: reviewers' decisions", highlight=False)
    if plot:
        console.print(f"plot written to {plot}", highlight=False)


@app.command("eval", short_help="F1 of predictions against a gold file.")
def eval_(
    pred: Annotated[Path, typer.Argument(metavar="PRED",
        help="Predictions, line for line with GOLD.")],
    gold: Annotated[Path, typer.Argument(metavar="GOLD",
        help="Gold file: MRE or IEPile instruction lines.")],
    lang: Annotated[str | None, typer.Option(
        "--lang", help="Language of gold items that do not name theirs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """F1 per dataset and language: text, word and joint (MRE) or per IEPile task."""
    from .evaluate import evaluate, rows

    try:
        result = evaluate(pred, gold, lang)
    except MmtransError as e:
        raise fail(e) from None
    if as_json:
        out.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    table = Table(title=f"{pred} against {gold}")
    for column in ("dataset", "language", "score", "P", "R", "F1", "tp/pred/gold"):
        table.add_column(column, justify="left" if column in ("dataset", "language", "score")
                         else "right")
    for group, name, s in rows(result):
        figures = ("-", "-", "-") if not s.pred and not s.gold else \
            (f"{s.precision:.4f}", f"{s.recall:.4f}", f"{s.f1:.4f}")
        table.add_row(group.dataset, group.language, name, *figures, f"{s.tp}/{s.pred}/{s.gold}")
    out.print(table)
    total = result.total
    console.print(f"{total.records} record(s); {total.malformed} malformed and {total.missing} "
                  f"missing prediction(s) counted as wrong; {result.extra} extra line(s) "
                  "ignored.", highlight=False)
    for line in result.malformed_lines:
        console.print(f"[yellow]malformed:[/] {escape(f'{pred}:{line}')}", highlight=False,
                      markup=True)


batch_app = typer.Typer(
    no_args_is_help=True, short_help="Batch files (vLLM run-batch, OpenAI's Batch API).", help=(
    "Batch files for vLLM run-batch or OpenAI's Batch API: write what a run still needs, "
    "read the answers back into the cache."))
app.add_typer(batch_app, name="batch")


@batch_app.command("write", short_help="Write the requests a run still needs as a batch file.")
def batch_write(
    input: Input,
    src: Src,
    tgt: Tgt,
    out_path: Annotated[Path, typer.Option("--out", help="The batch file (.jsonl) to write.")],
    base_url: Annotated[str, typer.Option(
        help="The endpoint that will answer (any name for vLLM run-batch, e.g. vllm:local); "
             "give the same to `translate` and it finds the answers.")],
    labels: Labels = [],  # noqa: B006 (typer reads the default)
    db: Db = Path("mmtrans.db"),
    model: Model = None,
    format: InputFormat = None,
    prompt: PromptName = None,
    temperature: Temperature = 0.0,
    seed: Seed = None,
    max_tokens: MaxTokens = None,
    limit: Limit = None,
    repair: Repair = 2,
    strategy: Annotated[str, typer.Option(help="default or tagged.")] = "default",
    force: Force = False,
) -> None:
    """Write every request the run still needs as a batch file, sending none."""
    from .batch import write_batch

    settings = settings_from(
        src, tgt, labels=labels, model=model, base_url=base_url, prompt=prompt, format=format,
        temperature=temperature, seed=seed, max_tokens=max_tokens, limit=limit, repair=repair,
        strategy=strategy)
    try:
        result = write_batch(input, db, settings, out_path, force=force)
    except MmtransError as e:
        raise fail(e) from None
    console.print(f"{result['requests']} request(s) written to "
                  f"{', '.join(result['files']) or 'no file (nothing left to ask)'}; "
                  f"{result['accepted']} accepted and {result['flagged']} flagged from answers "
                  f"already in run {result['run_id']}", highlight=False, soft_wrap=True)


@batch_app.command("submit", short_help="Send them to OpenAI's Batch API (half price, 24 h).")
def batch_submit(
    input: Input,
    src: Src,
    tgt: Tgt,
    labels: Labels = [],  # noqa: B006 (typer reads the default)
    db: Db = Path("mmtrans.db"),
    model: Model = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    format: InputFormat = None,
    prompt: PromptName = None,
    temperature: Temperature = 0.0,
    seed: Seed = None,
    max_tokens: MaxTokens = None,
    repair: Repair = 2,
    strategy: Annotated[str, typer.Option(help="default or tagged.")] = "default",
) -> None:
    """Send the requests the run still needs to OpenAI's Batch API (half price, 24 h)."""
    from .openai_batch import submit

    settings = settings_from(
        src, tgt, labels=labels, model=model, base_url=base_url, api_key=api_key,
        prompt=prompt, format=format, temperature=temperature, seed=seed,
        max_tokens=max_tokens, repair=repair, strategy=strategy)
    try:
        result = submit(input, db, settings)
    except MmtransError as e:
        raise fail(e) from None
    for batch_id in result["found"]:
        console.print(f"found batch {batch_id} of an earlier upload (its create had no answer)",
                      highlight=False, soft_wrap=True)
    for batch_id in result["made"]:
        console.print(f"started batch {batch_id} of an earlier upload (none was made of it)",
                      highlight=False, soft_wrap=True)
    started = f" in {len(result['batches'])} batch(es) {', '.join(result['batches'])}" \
        if result["batches"] else ""
    console.print(f"{result['requests']} request(s) submitted{started}; {result['held']} still "
                  "held by earlier batches. `mmtrans batch status` follows them, `mmtrans batch "
                  "collect` imports their answers.", highlight=False, soft_wrap=True)


def _api(base_url: str | None, api_key: str | None) -> tuple[str | None, str | None]:
    return base_url or os.environ.get("OPENAI_BASE_URL"), \
        api_key or os.environ.get("OPENAI_API_KEY")


@batch_app.command("status", short_help="The batches not yet collected, as the API reports them.")
def batch_status(db: Db = Path("mmtrans.db"), base_url: BaseUrl = None,
                 api_key: ApiKey = None) -> None:
    """The store's batches not yet collected, as the Batch API reports them."""
    from .openai_batch import status as batch_states

    try:
        rows = batch_states(db, *_api(base_url, api_key))
    except MmtransError as e:
        raise fail(e) from None
    for r in rows:
        counts = f" ({r['completed']} of {r['total']} done, {r['failed']} failed)" \
            if r["total"] is not None else ""
        out.print(f"{r['id']}: {r['status']}{counts}", highlight=False, soft_wrap=True)
        for error in r["errors"]:
            out.print(f"  {error}", highlight=False, soft_wrap=True)
    if not rows:
        console.print("no batch waiting to be collected")


@batch_app.command("collect", short_help="Import the answers of every finished batch.")
def batch_collect(db: Db = Path("mmtrans.db"), base_url: BaseUrl = None,
                  api_key: ApiKey = None) -> None:
    """Import the answers of every finished batch into the cache; then run `translate` (or
    `batch submit` for the repair turns) with the same settings."""
    from .openai_batch import collect

    try:
        totals = collect(db, *_api(base_url, api_key))
    except MmtransError as e:
        raise fail(e) from None
    unreadable = f", {totals['unreadable']} unreadable line(s)" if totals["unreadable"] else ""
    console.print(f"{totals['batches']} batch(es) collected: {totals['imported']} answer(s) "
                  f"imported, {totals['failed']} failed{unreadable} (their records stay "
                  f"pending); {totals['waiting']} batch(es) still running", highlight=False,
                  soft_wrap=True)
    for note in totals["notes"]:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True,
                      markup=True)


@batch_app.command("read", short_help="Put a batch output file's answers into the cache.")
def batch_read(
    results: Annotated[Path, typer.Argument(metavar="RESULTS", help="Batch output file (.jsonl).")],
    db: Db = Path("mmtrans.db"),
) -> None:
    """Put a batch output file's answers into the cache; then run `translate` (or `batch
    write`) again with the same settings to check, repair and store them."""
    from .batch import read_batch

    try:
        counts = read_batch(db, results)
    except MmtransError as e:
        raise fail(e) from None
    for path, line, why in counts.unreadable:
        console.print(f"[yellow]unreadable:[/] {escape(f'{path}:{line}: {why}')}",
                      highlight=False, soft_wrap=True, markup=True)
    console.print(f"{counts.imported} answer(s) imported, {counts.failed} failed (their "
                  f"records stay pending), {counts.unknown} not asked by this store",
                  highlight=False, soft_wrap=True)


labels_app = typer.Typer(no_args_is_help=True,
                         help="Label tables: what no table covers, and suggestions to confirm.")
app.add_typer(labels_app, name="labels")
OptionalLabels = Annotated[list[str], typer.Option("--labels", metavar="TABLE",
    help="Tables already covering.")]


@labels_app.command("missing", short_help="The labels no table covers, as a TSV to fill in.")
def labels_missing(
    input: Input,
    src: Src,
    tgt: Tgt,
    labels: OptionalLabels = [],  # noqa: B006 (typer reads the default)
    out_path: Annotated[Path | None, typer.Option("--out", help="Write here, not stdout.")] = None,
    force: Force = False,
) -> None:
    """List the input's labels that no table covers, as a TSV ready to fill in."""
    from .suggest import as_tsv, missing_labels

    try:
        counts = missing_labels(input, src, tgt, labels)
    except MmtransError as e:
        raise fail(e) from None
    text = as_tsv(counts, header=f"labels of {input.name} no table covers, {src} -> {tgt}: "
                                 "fill in the translations")
    if out_path:
        try:
            write_output(out_path, text, force, protected=[input])
        except MmtransError as e:
            raise fail(e) from None
        console.print(f"{len(counts)} label(s) written to {out_path}", highlight=False)
    else:
        print(text, end="")


@labels_app.command("suggest", short_help="Ask the model for the missing labels, to check.")
def labels_suggest(
    input: Input,
    src: Src,
    tgt: Tgt,
    out_path: Annotated[Path, typer.Option("--out", help="The .suggested.tsv to write.")],
    labels: OptionalLabels = [],  # noqa: B006 (typer reads the default)
    model: Model = None,
    base_url: Annotated[str | None, typer.Option(metavar="URL",
        help="OpenAI-compatible server.")] = None,
    api_key: Annotated[str | None, typer.Option(metavar="KEY",
        help="API key (or OPENAI_API_KEY).")] = None,
    local: Local = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for the answer.")] = 60.0,
    max_attempts: Annotated[int, typer.Option(min=1, help="Attempts for the request.")] = 6,
    force: Force = False,
) -> None:
    """Ask the model to translate the missing labels; write them for a person to confirm."""
    from .suggest import as_tsv, missing_labels, suggest

    try:
        check_output(out_path, force, protected=[input])
        backend = pipeline.make_backend(settings_from(
            src, tgt, labels=labels, model=model, base_url=base_url, api_key=api_key,
            local=local, timeout=timeout, max_attempts=max_attempts))
        counts = missing_labels(input, src, tgt, labels)
        suggestions = suggest(sorted(counts), src, tgt, backend)
    except MmtransError as e:
        raise fail(e) from None
    header = (f"suggested by {backend.model} for {input.name}, {src} -> {tgt}. NOT USED until "
              "a person checks each line\nand moves it into data/labels/<name>."
              f"{src}-{tgt}.tsv (or passes this file, renamed to .tsv, to --labels).")
    try:
        write_output(out_path, as_tsv(counts, suggestions, header), force, protected=[input])
    except MmtransError as e:
        raise fail(e) from None
    console.print(f"{len(suggestions)} of {len(counts)} label(s) suggested in {out_path}",
                  highlight=False)


@labels_app.command("similar", short_help="Propose a hard-negative dictionary to edit.")
def labels_similar(
    inputs: Annotated[list[Path], typer.Argument(metavar="FILE...",
        help="Dataset files (format auto-detected).")],
    out_path: Annotated[Path | None, typer.Option("--out", help="Write here, not stdout.")] = None,
    top: Annotated[int, typer.Option(min=1, help="Similar labels per label, at most.")] = 5,
    threshold: Annotated[float, typer.Option(help="Least similarity (0 to 1).")] = 0.2,
    force: Force = False,
) -> None:
    """Propose a hard-negative dictionary (IEPile's JSON form) for a person to edit."""
    from .similar import propose

    try:
        proposed = propose(list(inputs), top, threshold)
    except MmtransError as e:
        raise fail(e) from None
    text = json.dumps(proposed, ensure_ascii=False, indent=2) + "\n"
    if out_path:
        try:
            write_output(out_path, text, force, protected=inputs)
        except MmtransError as e:
            raise fail(e) from None
        n = sum(len(t) for by_dataset in proposed.values() for t in by_dataset.values())
        console.print(f"similar labels for {n} label(s) written to {out_path}: edit before "
                      "passing it to export --hard-negatives", highlight=False)
    else:
        print(text, end="")


def main() -> None:
    # The interpreter's last collection, at exit, scans every object the command made (a
    # run's records, the SDK's types) and frees nothing that outlives the process: 0.25 s
    # of a 5 s packed run. Frozen at exit, they are skipped; files and the store are closed
    # before that by their own `with`.
    atexit.register(gc.freeze)
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted; run the same command again to resume")
        sys.exit(130)


if __name__ == "__main__":  # `python -m mmtrans.cli` as well as `python -m mmtrans`
    main()
