"""The checks of a run's answers in a process of their own (`--check-processes`).

`run_checks` is a pure function and the largest cost per record of a packed run (its
langdetect above all): in a second process it runs on the machine's other core while the
run's own process sends requests and writes the store. The same function on the same
inputs, so the same results; one call carries a whole pack, so the cost of the hand-over
is paid once for its records, and the checks asked for while every worker is busy go together
in the next call (an unpacked run's records too: one hand-over for all that waited, never a
wait that was not needed). Spawned, not forked: the run's process holds threads (the
progress display, SQLite) that a fork would copy mid-stride.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from .checks import CheckResult, run_checks
from .records import Record


def check_all(pairs: list[tuple[Record, Record]], src: str, tgt: str) -> list[CheckResult]:
    """`run_checks` of each (expected, target) pair, in order."""
    return [run_checks(expected, target, src, tgt) for expected, target in pairs]


def _warm(src: str, tgt: str) -> None:
    """Import the checks and read langdetect's profiles before the first answer comes."""
    from .language import guess_languages

    if tgt not in ("zh", "ja"):
        guess_languages("a text to read the language profiles by, once")


Pairs = list[tuple[Record, Record]]


class CheckPool:
    """`processes` worker processes that run the checks of a run's answers."""

    def __init__(self, processes: int, src: str, tgt: str) -> None:
        self.src, self.tgt = src, tgt
        self.processes = processes
        self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(
            "spawn"))
        for _ in range(processes):
            self._pool.submit(_warm, src, tgt)
        #: Checks asked for while every worker was busy, each with the future it awaits.
        self._waiting: list[tuple[Pairs, asyncio.Future[list[CheckResult]]]] = []
        self._busy = 0
        #: Calls made to the workers, and the pairs they carried (for tests and benches).
        self.calls = 0
        self.pairs = 0

    async def check(self, pairs: Pairs) -> list[CheckResult]:
        """The checks of `pairs`, run in a worker, awaited without blocking the loop: at
        once when a worker is free, else with every check that waits with it."""
        future: asyncio.Future[list[CheckResult]] = \
            asyncio.get_running_loop().create_future()
        self._waiting.append((pairs, future))
        if self._busy < self.processes:
            self._send()
        return await future

    def _send(self) -> None:
        """Hand every waiting check to a worker in one call."""
        batch, self._waiting = self._waiting, []
        together = [pair for pairs, _ in batch for pair in pairs]
        self._busy += 1
        self.calls += 1
        self.pairs += len(together)
        done = asyncio.wrap_future(self._pool.submit(check_all, together, self.src, self.tgt))
        done.add_done_callback(lambda finished: self._hand_back(batch, finished))

    def _hand_back(self, batch: list[tuple[Pairs, asyncio.Future[list[CheckResult]]]],
                   finished: asyncio.Future[list[CheckResult]]) -> None:
        """Give each waiting check its results (or the call's error), then send what
        waited meanwhile."""
        self._busy -= 1
        error = None if finished.cancelled() else finished.exception()
        results = iter(()) if finished.cancelled() or error else iter(finished.result())
        for pairs, future in batch:
            if future.done():  # its caller was cancelled
                if error is None and not finished.cancelled():
                    for _ in pairs:
                        next(results)
                continue
            if finished.cancelled():
                future.cancel()
            elif error is not None:
                future.set_exception(error)
            else:
                future.set_result([next(results) for _ in pairs])
        if self._waiting and self._busy < self.processes:
            self._send()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
