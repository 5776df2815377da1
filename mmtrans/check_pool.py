"""The checks of a run's answers in a process of their own (`--check-processes`).

`run_checks` is a pure function and the largest cost per record of a packed run (its
langdetect above all): in a second process it runs on the machine's other core while the
run's own process sends requests and writes the store. The same function on the same
inputs, so the same results; one call carries a whole pack, so the cost of the hand-over
is paid once for its records. Spawned, not forked: the run's process holds threads (the
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


class CheckPool:
    """`processes` worker processes that run the checks of a run's answers."""

    def __init__(self, processes: int, src: str, tgt: str) -> None:
        self.src, self.tgt = src, tgt
        self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(
            "spawn"))
        for _ in range(processes):
            self._pool.submit(_warm, src, tgt)

    async def check(self, pairs: list[tuple[Record, Record]]) -> list[CheckResult]:
        """The checks of `pairs`, run in a worker, awaited without blocking the loop."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, check_all, pairs, self.src, self.tgt)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
