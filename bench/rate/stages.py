"""Where a late send's time goes: one bench/rate row with every send traced stage by stage.

For each request: when the limiter let it go (`acquire` returned), when the SDK's post was
entered, when it reached the transport (mmtrans/transport.py) and aiohttp's pool gave it a
connection (and whether that was a new one: connect start and end), when its headers and body
were written to the socket, and when the kernel of the server received it (SO_TIMESTAMP).
Sends that reached the server more than `--late` ms after the limiter let them go are listed
with each stage's share, and the event loop's lag (a 5 ms timer's overshoot) around them.

    flock /work/bench.lock python bench/rate/stages.py --semantics sliding --quantum sliding
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import make_input, paired  # noqa: E402

import mmtrans  # noqa: E402
from mmtrans.limiters import LimitedServer, message_key  # noqa: E402
from mmtrans.llm import OpenAIBackend  # noqa: E402
from mmtrans.ratelimit import RateLimiter  # noqa: E402
from mmtrans.transport import AiohttpTransport  # noqa: E402

CURRENT: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "CURRENT", default=None)


class Stages:
    """Patches the limiter, the backend and the transport to stamp each send's stages."""

    def __init__(self) -> None:
        self.sends: dict[int, list[dict[str, float]]] = {}
        #: (wall time, lag, CPU this process used meanwhile): a lag the process spent on
        #: the CPU is its own synchronous work; one it did not, other processes' turn.
        self.lags: list[tuple[float, float, float]] = []
        self.probe: asyncio.Task[None] | None = None
        self.saved: list[tuple[Any, str, Any]] = []

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, cpu = loop.time() + 0.005, time.process_time()
            await asyncio.sleep(0.005)
            lag = loop.time() - due
            self.lags.append((time.time(), lag, max(0.0, time.process_time() - cpu)))

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        self.saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def __enter__(self) -> Stages:
        stages = self
        acquire, create = RateLimiter.acquire, OpenAIBackend._create
        transport_send, open_session = AiohttpTransport.handle_async_request, \
            AiohttpTransport._open

        async def timed_acquire(limiter: RateLimiter, prompt_tokens: float = 0.0) -> Any:
            ticket = await acquire(limiter, prompt_tokens)
            CURRENT.set({"released": time.time(), "due": limiter.requests.tat})
            return ticket

        async def timed_create(backend: OpenAIBackend, messages: Any, params: Any) -> Any:
            stamp = CURRENT.get() or {}
            stamp = dict(stamp, created=time.time())
            CURRENT.set(stamp)
            stages.sends.setdefault(message_key({"messages": messages}), []).append(stamp)
            if stages.probe is None:
                stages.probe = asyncio.get_running_loop().create_task(stages._probe())
            return await create(backend, messages, params)

        async def traced(transport: AiohttpTransport, request: Any) -> Any:
            stamp = CURRENT.get()
            if stamp is not None:
                stamp["pool"] = time.time()
                connector = transport._session.connector if transport._session else None
                if connector is not None:  # (aiohttp's own counts: no public accessor)
                    stamp["idle"] = sum(len(c) for c in connector._conns.values())
                    stamp["connections"] = stamp["idle"] + len(connector._acquired)
            return await transport_send(transport, request)

        def stamp_of(name: str) -> Any:
            async def stamp(*_: Any) -> None:
                current = CURRENT.get()
                if current is not None:
                    current.setdefault(name, time.time())
            return stamp

        def traced_open(transport: AiohttpTransport) -> aiohttp.ClientSession:
            session = open_session(transport)
            trace = aiohttp.TraceConfig()
            for name in ("request_start", "connection_reuseconn", "connection_queued_start",
                         "connection_create_start", "connection_create_end",
                         "request_headers_sent", "request_chunk_sent"):
                getattr(trace, "on_" + name).append(stamp_of(name))
            trace.freeze()
            session._trace_configs.append(trace)
            return session

        self._patch(RateLimiter, "acquire", timed_acquire)
        self._patch(OpenAIBackend, "_create", timed_create)
        self._patch(AiohttpTransport, "handle_async_request", traced)
        self._patch(AiohttpTransport, "_open", traced_open)
        return self

    def __exit__(self, *exc: Any) -> None:
        for owner, name, value in reversed(self.saved):
            setattr(owner, name, value)


STAGES = ("released", "created", "pool", "request_start", "connection_reuseconn",
          "connection_queued_start", "connection_create_start", "connection_create_end",
          "request_headers_sent", "request_chunk_sent", "arrived")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--semantics", default="sliding")
    parser.add_argument("--quantum", default="sliding")
    parser.add_argument("--rpm", type=float, default=600)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--late", type=float, default=30.0, help="ms: which sends to list")
    parser.add_argument("--out", type=Path, help="write every send's stages here (JSON)")
    args = parser.parse_args()
    quantum = None if args.quantum == "no" else args.quantum
    records = round(args.rpm * args.seconds / 60)
    with tempfile.TemporaryDirectory() as tmp, \
            LimitedServer(args.semantics, args.rpm, quantum=quantum or False) as server, \
            Stages() as stages:
        source = Path(tmp) / "ner.json"
        make_input(source, records)
        settings = mmtrans.Settings(src="ja", tgt="en", labels=["scnm"], model="gpt-4o-mini",
                                    base_url=server.base_url, repair=0, concurrency=256,
                                    fidelity=False)
        load = os.getloadavg()[0]
        mmtrans.translate(source, Path(tmp) / "run.db", settings)
        achieved = server.achieved()
        arrivals = server.arrivals()
    rows = [dict(sent, arrived=arrived, admitted=admitted)
            for (arrived, admitted, _), sent in paired(arrivals, stages.sends)]
    connects = sum("connection_create_start" in r for r in rows)
    print(f"load {load:.1f}/{os.getloadavg()[0]:.1f}; {len(rows)} sends, "
          f"{achieved['refused']} refused, rpm_known {achieved['rpm_known'] / args.rpm:.3f}; "
          f"new connections {connects}")
    late = [r for r in rows if "released" in r and (r["arrived"] - r["released"]) * 1000
            > args.late]
    print(f"{len(late)} sends later than {args.late:g} ms from release to arrival:")
    for r in late:
        parts = []
        last = r["released"]
        for stage in STAGES[1:]:
            if stage in r:
                parts.append(f"{stage} +{(r[stage] - last) * 1000:.1f}")
                last = r[stage]
        near = [(lag, cpu) for t, lag, cpu in stages.lags
                if r["released"] - 0.05 <= t <= r["arrived"] + 0.05]
        lag, cpu = max(near, default=(0.0, 0.0))
        total = (r["arrived"] - r["released"]) * 1000
        print(f"  {'ok ' if r['admitted'] else '429'} total {total:6.1f} ms; conns "
              f"{r.get('connections', 0):.0f} idle {r.get('idle', 0):.0f}; "
              + "; ".join(parts) + f"; loop lag near {lag * 1000:.0f} ms "
              f"(this process on the CPU {cpu * 1000:.0f} ms of its {lag * 1000 + 5:.0f})")
    refused = [r for r in rows if not r["admitted"]]
    lags = sorted(stages.lags, key=lambda x: -x[1])[:max(1, len(stages.lags) // 100)]
    print(f"loop lag, the worst 1% ({len(lags)}): {sum(x[1] for x in lags) * 1000:.0f} ms in "
          f"all, this process on the CPU for {sum(x[2] for x in lags) * 1000:.0f} ms of "
          f"{sum(x[1] + 0.005 for x in lags) * 1000:.0f}")
    print(f"refused: {len(refused)}")
    for r in refused:
        print(f"  at {r['arrived'] % 100:.3f} release->arrival "
              f"{(r['arrived'] - r.get('released', r['arrived'])) * 1000:.1f} ms")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "lags": stages.lags}))


if __name__ == "__main__":
    main()
