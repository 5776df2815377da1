"""`python -m mmtrans.testing serve`: the scripted server as a command, so anyone can try
every mmtrans command in a minute with no model.

It answers `/v1/chat/completions` with the scripted good translations of `mmtrans.testing`
(each annotated string becomes a made-up name, the sentence is built around them), and
`/v1/models` with one model. `--faults` mixes in what real servers do: rate limits, server
errors, slow answers, and records always answered with a defect (so that `review` has
something to show).
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import threading
from typing import Annotated, Any

import typer

from .testing import FakeLLM, Listener, Reply, Script, good_translation, translating

FAULTS = {
    "429": "a rate limit (429 with Retry-After: 1), per request",
    "500": "a server error, per request",
    "slow": "an answer 5 s late, per request",
    "flag": "a record always answered with one annotated string left out (it stays flagged "
            "after repairs: something to review), per record",
}


def parse_faults(spec: str | None) -> dict[str, float]:
    """`"429=0.1,flag=0.2"` -> {"429": 0.1, "flag": 0.2}; a share is 0 to 1."""
    faults: dict[str, float] = {}
    for part in filter(None, (spec or "").split(",")):
        name, _, share = part.partition("=")
        name = name.strip()
        if name not in FAULTS:
            raise typer.BadParameter(f"{name!r}: known faults are {', '.join(FAULTS)}")
        try:
            faults[name] = float(share)
        except ValueError:
            raise typer.BadParameter(f"{part!r}: expected NAME=SHARE, e.g. 429=0.1") from None
        if not 0 <= faults[name] <= 1:
            raise typer.BadParameter(f"{part!r}: a share is between 0 and 1")
    return faults


def _share_of(text: str) -> float:
    """A stable number in [0, 1) for a record's text: the same records are always defective."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


def scripted(tgt: str = "en", latency: float = 0.0, faults: dict[str, float] | None = None,
             seed: int = 0) -> Script:
    """Good translations into `tgt`, `latency` seconds late, with `faults` mixed in."""
    faults = faults or {}
    good = translating(tgt)
    rng = random.Random(seed)
    lock = threading.Lock()

    def script(payload: dict[str, Any], request: dict[str, Any]) -> Reply:
        with lock:
            draw = {name: rng.random() for name in ("429", "500", "slow")}
        if draw["429"] < faults.get("429", 0):
            return Reply(status=429, headers={"retry-after": "1"}, body={"error": {
                "message": "Rate limit reached (scripted).", "type": "requests",
                "code": "rate_limit_exceeded"}})
        if draw["500"] < faults.get("500", 0):
            return Reply(status=500, delay=latency)
        delay = latency + (5.0 if draw["slow"] < faults.get("slow", 0) else 0.0)
        text = payload.get("text", "")
        kind = next((k for k in ("entities", "relations", "events") if payload.get(k)), None)
        if kind and _share_of(text) < faults.get("flag", 0):
            answer = good_translation(payload, tgt)
            answer[kind] = answer[kind][1:]  # a mention, a relation or an event left out
            return Reply(json.dumps(answer, ensure_ascii=False), delay=delay)
        reply = good(payload, request)
        reply.delay = delay
        return reply

    return script


def start(script: Script, port: int = 0, model: str = "mmtrans-scripted",
          host: str = "127.0.0.1") -> FakeLLM:
    """A running FakeLLM on `port` (0: a free one) that also lists `model` at /v1/models."""
    llm = FakeLLM(script)
    answers = llm.server.RequestHandlerClass

    class Handler(answers):  # type: ignore[valid-type, misc]
        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/").split("?")[0] != "/v1/models":
                return self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            self.send_json(200, {"object": "list", "data": [
                {"id": model, "object": "model", "created": 0, "owned_by": "mmtrans"}]})

        def send_json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    llm.server.server_close()  # FakeLLM bound a free port; bind the one asked for instead
    llm.server = Listener((host, port), Handler)
    llm.thread = threading.Thread(target=llm.server.serve_forever, daemon=True)
    return llm.__enter__()


app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="The scripted OpenAI-compatible server, for trying mmtrans without "
                       "a model.")


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 8842,
    tgt: Annotated[str, typer.Option(
        "--tgt", metavar="LANG", help="Language the answers are in: en, ja or zh.")] = "en",
    latency: Annotated[float, typer.Option(
        min=0, metavar="SECONDS", help="Seconds before each answer.")] = 0.0,
    faults: Annotated[str | None, typer.Option(
        metavar="NAME=SHARE,...", help="Faults mixed in, e.g. 429=0.1,500=0.05,flag=0.2: "
        + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()) + ".")] = None,
    model: Annotated[str, typer.Option(help="The model name /v1/models gives.")] =
        "mmtrans-scripted",
    seed: Annotated[int, typer.Option(help="Seed of the per-request faults.")] = 0,
) -> None:
    """Serve scripted translations on 127.0.0.1 until Ctrl-C (or SIGTERM); prints the base
    URL on stdout."""
    stop = threading.Event()
    # Ctrl-C or SIGTERM (a server started with `&` in a script has SIGINT ignored), caught
    # from before the URL is printed: whoever reads it may stop the server at once.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        llm = start(scripted(tgt, latency, parse_faults(faults), seed), port, model)
    except OSError as e:
        typer.echo(f"error: cannot listen on 127.0.0.1:{port}: {e.strerror}", err=True)
        raise typer.Exit(2) from None
    typer.echo(llm.base_url, err=False)
    typer.echo(f"scripted translations into {tgt} as model {model}; try:\n"
               f"  mmtrans translate data/samples/stockmark-ner-20.json --src ja --tgt {tgt} "
               f"--base-url {llm.base_url}\n(Ctrl-C to stop)", err=True)
    try:
        stop.wait()
    finally:
        llm.__exit__(None, None, None)


@app.callback()
def _group() -> None:
    """Keeps `serve` a named subcommand (`python -m mmtrans.testing serve`)."""


def main() -> None:
    app()
