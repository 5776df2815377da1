"""The `mmtrans` command: options in, one library call, rich output. No logic lives here."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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
from .errors import EndpointDownError, MmtransError
from .estimate import spent
from .export import export as export_run
from .llm import Params
from .run import Settings
from .run import translate as translate_run
from .store import Store
from .verify import check_files

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Translate annotated IE datasets with an LLM, keeping every span true.")
console = Console(stderr=True)
out = Console()

Db = Annotated[Path, typer.Option("--db", help="The run's SQLite file.")]
Src = Annotated[str, typer.Option("--src", help="Source language (ja, zh, en, ...).")]
Tgt = Annotated[str, typer.Option("--tgt", help="Target language.")]
Labels = Annotated[list[str], typer.Option(
    "--labels", help="Label table or .tsv (repeatable); default: the pair's table that fits.")]
Input = Annotated[Path, typer.Argument(help="Input file (format auto-detected).")]
Model = Annotated[str | None, typer.Option(help="Model name.")]
InputFormat = Annotated[str | None, typer.Option("--format", help="Input format.")]
PromptName = Annotated[str | None, typer.Option(help="Prompt name or .toml file.")]
Repair = Annotated[int, typer.Option(min=0, help="Follow-up turns for a flagged record.")]
Limit = Annotated[int | None, typer.Option(min=0, help="Only the first N records.")]
BaseUrl = Annotated[str | None, typer.Option(help="API base URL (default: OpenAI's).")]
ApiKey = Annotated[str | None, typer.Option(help="API key (or OPENAI_API_KEY).")]


class WaitingColumn(ProgressColumn):
    """Why the run waits, read afresh at every refresh (a hanging server shows at once)."""

    def __init__(self, text: Callable[[], str]):
        super().__init__()
        self.text = text

    def render(self, task: object) -> Text:
        return Text(self.text(), style="yellow")


def fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


@app.command()
def translate(
    input: Input,
    src: Src,
    tgt: Tgt,
    labels: Labels = [],  # noqa: B006 (typer reads the default)
    db: Db = Path("mmtrans.db"),
    model: Model = None,
    base_url: Annotated[str | None, typer.Option(
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (or OPENAI_BASE_URL)."
    )] = None,
    api_key: Annotated[str | None, typer.Option(help="API key (or OPENAI_API_KEY).")] = None,
    local: Annotated[bool, typer.Option(help="Run a GGUF model in-process (extra local).")] = False,
    local_model: Annotated[Path | None, typer.Option(help="GGUF file for --local.")] = None,
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
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
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
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Render and price the requests; send none.")] = False,
    price_in: Annotated[float | None, typer.Option(
        min=0, help="US$ per million input tokens (default: data/prices).")] = None,
    price_out: Annotated[float | None, typer.Option(
        min=0, help="US$ per million output tokens (default: data/prices).")] = None,
) -> None:
    """Translate INPUT into the store; the same command resumes an interrupted run.

    Exit status: 0 when every record was translated (accepted or flagged), 1 when any
    failed or the server could not be reached, 2 for bad input or settings."""
    settings = Settings(
        src=src, tgt=tgt, labels=labels, model=model, base_url=base_url, api_key=api_key,
        local=local, local_model=str(local_model) if local_model else None,
        concurrency=concurrency, rpm=rpm, tpm=tpm, params=Params(temperature, seed, max_tokens),
        prompt=prompt, format=format, limit=limit, repair=repair, strategy=strategy,
        timeout=timeout, max_attempts=max_attempts, pack=pack, dry_run=dry_run, price_in=price_in,
        price_out=price_out,
    )
    progress: list[pipeline.Progress] = []
    columns = (TextColumn("[bold]translating"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
               WaitingColumn(lambda: progress[0].waiting(timeout) if progress else ""))
    bar = Progress(*columns, console=console)
    task = bar.add_task("translate", total=None, stats="")

    def show(p: pipeline.Progress) -> None:
        progress[:] = [p]
        bar.start()  # only once the input has been read and checked: errors print alone
        stats = (f"[green]{p.accepted} accepted[/] [yellow]{p.flagged} flagged[/] "
                 f"[red]{p.failed} failed[/] {p.tokens} tokens")
        bar.update(task, total=p.total, completed=p.done, stats=stats)

    def notice(text: str) -> None:
        console.print(f"[yellow]note:[/] {text}", highlight=False)

    try:
        result = translate_run(input, db, settings, on_progress=show, on_notice=notice)
    except EndpointDownError as e:
        bar.stop()
        console.print(f"[red]stopped:[/red] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except MmtransError as e:
        raise fail(e) from None
    except KeyboardInterrupt:
        bar.stop()
        console.print("interrupted; run the same command again to resume", highlight=False)
        raise typer.Exit(130) from None
    finally:
        bar.stop()
    if "estimate" in result:
        print_estimate(result["estimate"])
        return
    for line in result["reject_lines"]:
        console.print(f"[yellow]unreadable:[/] {line}", highlight=False, markup=True)
    if result["rejects"] > len(result["reject_lines"]):
        console.print(f"... and {result['rejects'] - len(result['reject_lines'])} more: "
                      "see the store's rejects table", highlight=False)
    console.print(
        f"{result['done']} translated ({result['accepted']} accepted, {result['flagged']} "
        f"flagged, {result['failed']} failed), {result['skipped']} already done, "
        f"{result['requests_sent']} requests sent, {result['rejects']} unreadable input "
        f"item(s). Run {result['run_id']} in {db}", highlight=False)
    unfinished = result["failed"] + result["unreachable"]
    if unfinished:
        console.print(f"[red]{unfinished} record(s) failed[/red]: run the same command again "
                      "to retry them", highlight=False)
        raise typer.Exit(1)


def print_estimate(e: dict) -> None:
    """A dry run's figures, one per line."""
    def dollars(value: float | None) -> str:
        return f"${value:,.2f}" if value is not None else "no price for this model " \
            "(add it to data/prices, or pass --price-in and --price-out)"

    out.print(f"dry run for {e['model']}: nothing was sent\n"
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
    "--run", help="Run id or a unique prefix (default: the run last used; see `mmtrans runs`).")]


@app.command()
def classify(
    input: Input,
    src: Annotated[str, typer.Option("--src", help="Language of the texts (and labels).")],
    db: Db = Path("mmtrans.db"),
    model: Model = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server.")] = None,
    api_key: Annotated[str | None, typer.Option(help="API key (or OPENAI_API_KEY).")] = None,
    local: Annotated[bool, typer.Option(help="Run a GGUF model in-process.")] = False,
    local_model: Annotated[Path | None, typer.Option(help="GGUF file for --local.")] = None,
    format: InputFormat = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 8,
    limit: Limit = None,
) -> None:
    """Propose an open-domain text label per record, for reviewers to confirm (TCONER)."""
    from .classify import classify as classify_records

    settings = Settings(
        src=src, tgt=src, model=model, base_url=base_url, api_key=api_key, local=local,
        local_model=str(local_model) if local_model else None, concurrency=concurrency,
        format=format, limit=limit, repair=0)
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


@app.command()
def status(
    db: Db = Path("mmtrans.db"),
    run: RunOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """One run's accounting: items read per file, records by status, problems, tokens."""
    from .review.agreement import agreement_line, team_figures

    try:
        with Store(db, create=False) as store:
            summary = store.status(run)
            model = store.run(summary["run"])["model"]
            summary |= team_figures(store, summary["run"])
    except MmtransError as e:
        raise fail(e) from None
    cost = spent(model, summary["tokens_in"], summary["tokens_out"])
    summary["cost_usd"] = round(cost, 4) if cost is not None else None
    if as_json:
        out.print_json(json.dumps(summary, ensure_ascii=False))
        return
    table = Table(title=f"{db}: run {summary['run']}", show_header=False)
    for key, value in summary.items():
        if key not in ("run", "files", "problems", "attempts", "reviews", "reject_reasons",
                       "agreement", "disagreements"):
            table.add_row(key, str(value))
    for f in summary["files"]:
        sums = f"{f['records']} records + {f['rejects']} unreadable"
        if f["ok"]:
            table.add_row(f"  file: {f['path']}", f"{f['items_read']} items read = {sums}")
        else:
            table.add_row(f"  file: {f['path']}",
                          f"[red]{f['items_read']} items read, but {sums}: items are missing[/]")
    for code, n in summary["problems"].items():
        table.add_row(f"  problem: {code}", str(n))
    for decision, n in summary["reviews"].items():
        table.add_row(f"  reviewed: {decision}", str(n))
    for reason, n in summary["reject_reasons"].items():
        table.add_row(f"    rejected as: {reason}", str(n))
    if summary["agreement"]:
        table.add_row("  disagreements open", str(summary["disagreements"]))
    for pair in summary["agreement"]:
        table.add_row(f"  agreement: {pair['a']} / {pair['b']}", agreement_line(pair))
    for attempt, row in summary["attempts"].items():
        what = "first answers" if attempt == "0" else f"repair {attempt}"
        table.add_row(f"{what}: accepted/made", f"{row['accepted']}/{row['translations']} "
                                                f"({row['tokens']} tokens)")
    out.print(table)
    if not all(f["ok"] for f in summary["files"]):
        console.print("[red]items read and items stored differ[/red]: see the files above",
                      highlight=False)


@app.command()
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
    table = Table(title=str(db))
    for column in ("run", "input", "languages", "model", "prompt", "records", "accepted",
                   "flagged", "failed", "pending", "last used"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["id"], Path(r["input"] or "").name, f"{r['src']}->{r['tgt']}",
                      f"{r['model']} @ {r['endpoint']}", f"{r['prompt']} ({r['strategy']})",
                      *(str(r[k]) for k in ("records", "accepted", "flagged", "failed",
                                            "pending")),
                      r["last_used"] or r["created"])
    out.print(table)


@app.command()
def export(
    out_path: Annotated[Path, typer.Option("--out", help="Output file (.jsonl: JSON Lines).")],
    db: Db = Path("mmtrans.db"),
    format: Annotated[str | None, typer.Option("--format", help="Default: the input's.")] = None,
    run: RunOption = None,
    include_flagged: bool = False,
    include_overridden: Annotated[bool, typer.Option(
        help="Also records a reviewer kept with open problems (never with broken spans).")
    ] = False,
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
        help="iepile-instruction: IEPile's test lines {id, instruction, label}, every label "
             "asked, for `mmtrans eval`.")] = False,
    train: Annotated[list[str], typer.Option(
        "--train", help="hf: train size, N or NAME=N; the rest is the test split.")] = [],  # noqa: B006
) -> None:
    """Write the accepted translations (and flagged ones, if asked) to a file."""
    if as_ is not None:
        export_training(db, out_path, as_, run, include_flagged, split_num, hard_negatives,
                        neg_ratio, seed, train, test_form)
        return
    try:
        result = export_run(db, out_path, format, run, include_flagged, include_overridden)
    except MmtransError as e:
        raise fail(e) from None
    console.print(f"{result.written} record(s) written to {result.path} ({result.format}); "
                  f"{result.skipped} not exported.", highlight=False)


def export_training(db: Path, out_dir: Path, kind: str, run: str | None,
                    include_flagged: bool, split_num: int | None, hard_negatives: Path | None,
                    neg_ratio: float, seed: int, train: list[str], test_form: bool) -> None:
    """`export --as`: one library call per kind of training file."""
    from .oiellm import export_oiellm
    from .schema_batches import export_iepile_instructions

    try:
        if kind == "oiellm":
            written = export_oiellm(db, out_dir, run, include_flagged)
        elif kind == "iepile-instruction":
            written = export_iepile_instructions(db, out_dir, run, include_flagged, split_num,
                                                 hard_negatives, neg_ratio, seed, test_form)
        elif kind == "hf":
            from .hf import export_hf
            from .split import parse_sizes

            written = export_hf(db, out_dir, run, include_flagged, parse_sizes(train), seed)
        else:
            raise MmtransError(f"--as {kind}: expected oiellm, iepile-instruction or hf")
    except MmtransError as e:
        raise fail(e) from None
    for w in written:
        console.print(f"{w.dataset} ({w.language}): {w.records} line(s) in {w.path}",
                      highlight=False)


@app.command()
def check(
    source: Annotated[Path, typer.Argument(help="Source file.")],
    target: Annotated[Path, typer.Argument(help="Translated file, record for record.")],
    src: Src,
    tgt: Tgt,
    labels: Labels = [],  # noqa: B006 (typer reads the default)
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per record.")] = False,
) -> None:
    """Check a translated file against its source without any model. Exit 1 if any is flagged."""
    flagged = total = 0
    try:
        checked = check_files(source, target, src, tgt, labels)
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


@app.command()
def review(
    db: Db = Path("mmtrans.db"),
    host: Annotated[str, typer.Option(help="Address; non-local ones need a token.")] = "127.0.0.1",
    port: int = 8700,
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
        help="See every annotator's version side by side and decide the final one.")] = False,
) -> None:
    """Serve the review page for one run: accept, edit or reject flagged records."""
    from .review import access_token, parse_share, serve, team

    try:
        share = parse_share(spot_check)
        required = access_token(host, token)
        settings = team(guidelines, reasons, adjudicate)
        with Store(db, create=False) as store:
            run_id = store.resolve_run(run)
    except MmtransError as e:
        raise fail(e) from None
    query = f"/?token={required}" if required else "/"
    if required and not token:
        console.print(f"generated token: {required}", highlight=False)
    console.print(f"reviewing run {run_id} of {db} at http://{host}:{port}{query} "
                  "(Ctrl-C to stop)", highlight=False)
    serve(db, host, port, required, annotator, share, run_id, settings)


@app.command("split")
def split_(
    files: Annotated[list[Path], typer.Argument(help="Dataset files (any format).")],
    train: Annotated[list[str], typer.Option(
        "--train", help="Train size: N for every file, or NAME=N for one (repeatable).")],
    seed: Annotated[int, typer.Option(help="Shuffle seed; the same seed, the same split.")] = 0,
    out_dir: Annotated[Path | None, typer.Option(
        help="Where to write (default: beside each file).")] = None,
) -> None:
    """Write <name>.train and <name>.test files: N records to train, the rest to test."""
    from .split import parse_sizes, size_for, split

    try:
        default, named = parse_sizes(train)
        sizes = [size_for(f, default, named) for f in files]
        for path, size in zip(files, sizes):
            result = split(path, size, seed, out_dir)
            console.print(f"{path}: {result.train} to {result.train_path}, {result.test} to "
                          f"{result.test_path}", highlight=False)
    except MmtransError as e:
        raise fail(e) from None


@app.command("stats")
def stats_(
    db: Db = Path("mmtrans.db"),
    run: Annotated[str | None, typer.Option(
        help="Run id (default: the latest run of every input and language).")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="A Markdown table.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Also write a PNG: kept % and problems by code.")] = None,
) -> None:
    """Per dataset and language: read, accepted, flagged, repaired, reviewed, kept %."""
    from .stats import COLUMNS, stats
    from .stats import plot as write_plot

    try:
        result = stats(db, run)
        if plot:
            write_plot(result, plot)
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
            width = 10 if column == "dataset" else len(header)
            table.add_column(header, no_wrap=True, min_width=width,
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


@app.command("eval")
def eval_(
    pred: Annotated[Path, typer.Argument(help="Predictions, line for line with GOLD.")],
    gold: Annotated[Path, typer.Argument(help="Gold file: MRE or IEPile instruction lines.")],
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
        console.print(f"[yellow]malformed:[/] {pred}:{line}", highlight=False)


batch_app = typer.Typer(no_args_is_help=True, help=(
    "Batch files for vLLM run-batch or OpenAI's Batch API: write what a run still needs, "
    "read the answers back into the cache."))
app.add_typer(batch_app, name="batch")


@batch_app.command("write")
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
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
    limit: Limit = None,
    repair: Repair = 2,
    strategy: Annotated[str, typer.Option(help="default or tagged.")] = "default",
) -> None:
    """Write every request the run still needs as a batch file, sending none."""
    from .batch import write_batch

    settings = Settings(
        src=src, tgt=tgt, labels=labels, model=model, base_url=base_url, prompt=prompt,
        format=format, params=Params(temperature, seed, max_tokens), limit=limit,
        repair=repair, strategy=strategy)
    try:
        result = write_batch(input, db, settings, out_path)
    except MmtransError as e:
        raise fail(e) from None
    console.print(f"{result['requests']} request(s) written to "
                  f"{', '.join(result['files']) or 'no file (nothing left to ask)'}; "
                  f"{result['accepted']} accepted and {result['flagged']} flagged from answers "
                  f"already in run {result['run_id']}", highlight=False, soft_wrap=True)


@batch_app.command("submit")
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
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
    repair: Repair = 2,
    strategy: Annotated[str, typer.Option(help="default or tagged.")] = "default",
) -> None:
    """Send the requests the run still needs to OpenAI's Batch API (half price, 24 h)."""
    import os

    from .openai_batch import submit

    settings = Settings(
        src=src, tgt=tgt, labels=labels, model=model,
        base_url=base_url or os.environ.get("OPENAI_BASE_URL"),
        api_key=api_key or os.environ.get("OPENAI_API_KEY"), prompt=prompt, format=format,
        params=Params(temperature, seed, max_tokens), repair=repair, strategy=strategy)
    try:
        result = submit(input, db, settings)
    except MmtransError as e:
        raise fail(e) from None
    console.print(f"{result['requests']} request(s) submitted in {len(result['batches'])} "
                  f"batch(es) {', '.join(result['batches'])}; {result['held']} still held by "
                  "earlier batches. `mmtrans batch status` follows them, `mmtrans batch "
                  "collect` imports their answers.", highlight=False, soft_wrap=True)


def _api(base_url: str | None, api_key: str | None) -> tuple[str | None, str | None]:
    import os

    return base_url or os.environ.get("OPENAI_BASE_URL"), \
        api_key or os.environ.get("OPENAI_API_KEY")


@batch_app.command("status")
def batch_status(db: Db = Path("mmtrans.db"), base_url: BaseUrl = None,
                 api_key: ApiKey = None) -> None:
    """The store's batches not yet collected, as the Batch API reports them."""
    from .openai_batch import status as batch_states

    try:
        rows = batch_states(db, *_api(base_url, api_key))
    except MmtransError as e:
        raise fail(e) from None
    for r in rows:
        out.print(f"{r['id']}: {r['status']} ({r['completed']} of {r['total']} done, "
                  f"{r['failed']} failed)", highlight=False)
    if not rows:
        console.print("no batch waiting to be collected")


@batch_app.command("collect")
def batch_collect(db: Db = Path("mmtrans.db"), base_url: BaseUrl = None,
                  api_key: ApiKey = None) -> None:
    """Import the answers of every finished batch into the cache; then run `translate` (or
    `batch submit` for the repair turns) with the same settings."""
    from .openai_batch import collect

    try:
        totals = collect(db, *_api(base_url, api_key))
    except MmtransError as e:
        raise fail(e) from None
    console.print(f"{totals['batches']} batch(es) collected: {totals['imported']} answer(s) "
                  f"imported, {totals['failed']} failed (their records stay pending); "
                  f"{totals['waiting']} batch(es) still running", highlight=False, soft_wrap=True)


@batch_app.command("read")
def batch_read(
    results: Annotated[Path, typer.Argument(help="Batch output file (.jsonl).")],
    db: Db = Path("mmtrans.db"),
) -> None:
    """Put a batch output file's answers into the cache; then run `translate` (or `batch
    write`) again with the same settings to check, repair and store them."""
    from .batch import read_batch

    try:
        counts = read_batch(db, results)
    except MmtransError as e:
        raise fail(e) from None
    console.print(f"{counts['imported']} answer(s) imported, {counts['failed']} failed (their "
                  f"records stay pending), {counts['unknown']} not asked by this store",
                  highlight=False, soft_wrap=True)


labels_app = typer.Typer(no_args_is_help=True,
                         help="Label tables: what no table covers, and suggestions to confirm.")
app.add_typer(labels_app, name="labels")
OptionalLabels = Annotated[list[str], typer.Option("--labels", help="Tables already covering.")]


@labels_app.command("missing")
def labels_missing(
    input: Input,
    src: Src,
    tgt: Tgt,
    labels: OptionalLabels = [],  # noqa: B006 (typer reads the default)
    out_path: Annotated[Path | None, typer.Option("--out", help="Write here, not stdout.")] = None,
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
        out_path.write_text(text, encoding="utf-8")
        console.print(f"{len(counts)} label(s) written to {out_path}", highlight=False)
    else:
        print(text, end="")


@labels_app.command("suggest")
def labels_suggest(
    input: Input,
    src: Src,
    tgt: Tgt,
    out_path: Annotated[Path, typer.Option("--out", help="The .suggested.tsv to write.")],
    labels: OptionalLabels = [],  # noqa: B006 (typer reads the default)
    model: Model = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server.")] = None,
    api_key: Annotated[str | None, typer.Option(help="API key (or OPENAI_API_KEY).")] = None,
    local: Annotated[bool, typer.Option(help="Run a GGUF model in-process.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for the answer.")] = 60.0,
    max_attempts: Annotated[int, typer.Option(min=1, help="Attempts for the request.")] = 6,
) -> None:
    """Ask the model to translate the missing labels; write them for a person to confirm."""
    from .suggest import as_tsv, missing_labels, suggest

    try:
        backend = pipeline.make_backend(Settings(
            src=src, tgt=tgt, labels=labels, model=model, base_url=base_url, api_key=api_key,
            local=local, timeout=timeout, max_attempts=max_attempts))
        counts = missing_labels(input, src, tgt, labels)
        suggestions = suggest(sorted(counts), src, tgt, backend)
    except MmtransError as e:
        raise fail(e) from None
    header = (f"suggested by {backend.model} for {input.name}, {src} -> {tgt}. NOT USED until "
              "a person checks each line\nand moves it into data/labels/<name>."
              f"{src}-{tgt}.tsv (or passes this file, renamed to .tsv, to --labels).")
    out_path.write_text(as_tsv(counts, suggestions, header), encoding="utf-8")
    console.print(f"{len(suggestions)} of {len(counts)} label(s) suggested in {out_path}",
                  highlight=False)


@labels_app.command("similar")
def labels_similar(
    inputs: Annotated[list[Path], typer.Argument(help="Dataset files (format auto-detected).")],
    out_path: Annotated[Path | None, typer.Option("--out", help="Write here, not stdout.")] = None,
    top: Annotated[int, typer.Option(min=1, help="Similar labels per label, at most.")] = 5,
    threshold: Annotated[float, typer.Option(help="Least similarity (0 to 1).")] = 0.2,
) -> None:
    """Propose a hard-negative dictionary (IEPile's JSON form) for a person to edit."""
    from .similar import propose

    try:
        proposed = propose(list(inputs), top, threshold)
    except MmtransError as e:
        raise fail(e) from None
    text = json.dumps(proposed, ensure_ascii=False, indent=2) + "\n"
    if out_path:
        out_path.write_text(text, encoding="utf-8")
        n = sum(len(t) for by_dataset in proposed.values() for t in by_dataset.values())
        console.print(f"similar labels for {n} label(s) written to {out_path}: edit before "
                      "passing it to export --hard-negatives", highlight=False)
    else:
        print(text, end="")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted; run the same command again to resume")
        sys.exit(130)
