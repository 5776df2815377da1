"""The checks of a run's answers in processes of their own (`--check-processes`).

`run_checks` is a pure function and the largest cost per record of a packed run (its
langdetect above all): in a second process it runs on the machine's other core while the
run's own process sends requests and writes the store. The same function on the same
inputs, so the same results.

Each worker is a process at the other end of a socket pair that the run's event loop reads
and writes itself: a call goes when it is asked for (the worker reads the next from its
socket as soon as one is done: no wait between two) and its results come back in order, no
thread between. Through ProcessPoolExecutor, each call and its results passed a feeder or
a manager thread that waited for the busy loop's GIL, and the worker sat idle about 40% of
a packed run, which went no faster than with the checks in the run's own process. Workers
are forked while the run's process has no other thread (the CLI's, before anything else
starts): they begin with everything imported. Otherwise they are spawned, and import
mmtrans first (about 2 s).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .checks import CheckResult, Problem, run_checks
from .errors import CheckProcessError
from .records import Record

Pairs = list[tuple[Record, Record]]
ReplyParser = Callable[[str], tuple[Record | None, list[Problem]]]
#: A reply parsed and checked: its target when there is one the checks did not return (the
#: result holds it), the parser's problems, and the checks' result (None: nothing to check).
Checked = tuple[Record | None, list[Problem], CheckResult | None]
_HEADER = struct.Struct("!I")  # each message: its length, then its pickle
_GRACE = 10  # seconds a worker has to end its call and exit once the run closes its end


def check_all(pairs: Pairs, src: str, tgt: str) -> list[CheckResult]:
    """`run_checks` of each (expected, target) pair, in order."""
    return [run_checks(expected, target, src, tgt) for expected, target in pairs]


#: A reply to read: how to parse it (picklable: a partial of a module's function), the
#: reply, and the record it should translate.
Answer = tuple[ReplyParser, str, Record]


def parse_and_check(answers: list[Answer], src: str, tgt: str) -> list[Checked]:
    """Each reply parsed and its target checked: (the target, when it could not be checked,
    the parser's problems, the checks' result). A pack's replies parsed where they are
    checked: the run's process neither parses them nor sends the parsed records."""
    checked: list[Checked] = []
    for parse, reply, expected in answers:
        target, problems = parse(reply)
        result = run_checks(expected, target, src, tgt) if target is not None else None
        checked.append((None if result is not None else target, problems, result))
    return checked


def _warm(tgt: str) -> None:
    """Read langdetect's profiles before the first answer comes."""
    from .language import guess_languages

    if tgt not in ("zh", "ja"):
        guess_languages("a text to read the language profiles by, once")


def _error_answer(error: Exception) -> bytes:
    """`error` pickled, if the run can rebuild it (an error whose constructor takes other
    arguments than its message pickles, and fails to unpickle); else a CheckProcessError
    that names it."""
    try:
        answer = pickle.dumps((False, error), pickle.HIGHEST_PROTOCOL)
        pickle.loads(answer)
        return answer
    except Exception:
        return pickle.dumps((False, CheckProcessError(f"a check failed: {error!r}")))


def _serve(sock: socket.socket, src: str, tgt: str, inherited: list[int]) -> None:
    """A worker: answer each call read from `sock`, in order, until the run closes its end
    (or dies: the socket closes with it). `inherited`: the run's ends of the pool's sockets,
    which a forked worker holds too and closes (else the run closing its end is no end)."""
    for fd in inherited:
        os.close(fd)
    # Ctrl-C and SIGTERM (to the whole process group, as a terminal or a job runner sends
    # them) are the run's to handle: it stops, keeps what it has, and closes the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _warm(tgt)
    stream = sock.makefile("rb")
    while len(header := stream.read(_HEADER.size)) == _HEADER.size:
        function, items = pickle.loads(stream.read(_HEADER.unpack(header)[0]))
        try:
            answer = pickle.dumps((True, function(items, src, tgt)), pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # the run's to raise, as it would have raised it itself
            answer = _error_answer(e)
        try:
            sock.sendall(_HEADER.pack(len(answer)) + answer)
        except OSError:  # the run has closed its end (stopped, or interrupted)
            return


class _Worker:
    """One worker process, and the calls it has been sent and not yet answered."""

    def __init__(self, context: multiprocessing.context.BaseContext, src: str, tgt: str,
                 others: list[_Worker]) -> None:
        self.sock, theirs = socket.socketpair()
        forked = context.get_start_method() == "fork"
        inherited = [w.sock.fileno() for w in [*others, self]] if forked else []
        self.process = context.Process(  # type: ignore[attr-defined]
            target=_serve, args=(theirs, src, tgt, inherited), daemon=True,
            name="mmtrans-checks")
        self.process.start()
        theirs.close()
        #: The caller of each call sent and not yet answered, oldest first (the order the
        #: answers come in).
        self.sent: deque[asyncio.Future[Any]] = deque()
        self.writer: asyncio.StreamWriter | None = None
        self.reading: asyncio.Task[None] | None = None
        #: Calls sent, and the pairs they carried (for tests and benches).
        self.calls = self.pairs = 0
        #: Why it can take no more calls (its process ended, its answers cannot be read).
        self.failed: Exception | None = None

    async def open(self) -> None:
        """Read and write the socket from the running event loop."""
        reader, self.writer = await asyncio.open_connection(sock=self.sock)
        self.reading = asyncio.ensure_future(self._read(reader))

    def send(self, function: Callable[[list[Any], str, str], list[Any]], items: list[Any],
             future: asyncio.Future[Any]) -> None:
        """Ask for `function(items, src, tgt)`, answered to `future`."""
        assert self.writer is not None
        if self.failed is not None:
            future.set_exception(self.failed)
            return
        data = pickle.dumps((function, items), pickle.HIGHEST_PROTOCOL)
        self.writer.write(_HEADER.pack(len(data)) + data)
        self.sent.append(future)
        self.calls += 1
        self.pairs += len(items)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                size = _HEADER.unpack(await reader.readexactly(_HEADER.size))[0]
                ok, value = pickle.loads(await reader.readexactly(size))
                future = self.sent.popleft()
                if future.done():  # its caller was cancelled
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except asyncio.CancelledError:
            raise
        except (asyncio.IncompleteReadError, ConnectionError):
            await asyncio.to_thread(self.process.join, 1)
            self._fail(CheckProcessError(
                f"the process that checks the answers ended (exit code "
                f"{self.process.exitcode}); run the same command again to resume"))
        except Exception as e:  # an answer that cannot be read: no later one can be trusted
            self._fail(CheckProcessError(f"the check process's answer could not be read: "
                                         f"{e!r}"))

    def _fail(self, error: Exception) -> None:
        """Fail every call outstanding, and every call to come (also while none is out:
        a worker that dies idle must not leave the next caller waiting for ever)."""
        self.failed = error
        while self.sent:
            if not (future := self.sent.popleft()).done():
                future.set_exception(error)

    async def stop(self) -> None:
        """Close the run's end: the worker reads the end of its calls and exits."""
        if self.writer is not None:
            self.writer.close()
        if self.reading is not None:
            self.reading.cancel()
            await asyncio.gather(self.reading, return_exceptions=True)
        self.writer = self.reading = None

    def close(self) -> None:
        self.sock.close()
        self.process.join(_GRACE)
        if self.process.is_alive():  # (it ignores SIGTERM: it is the run's to handle)
            self.process.kill()
            self.process.join()


def can_fork() -> bool:
    """Can workers be forked now: on Linux (macOS forks, but its system libraries may start
    threads that a fork leaves broken: Python spawns there), with no other Python thread
    running? Native threads are not counted: importing numpy starts one for OpenBLAS (so
    every mmtrans process has one), and a worker calls neither BLAS nor any other library
    that keeps threads, only the checks."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def usable_cores() -> int:
    """The cores this process may run on (its affinity, a container's cpuset), not the
    machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_processes() -> int:
    """The check processes a run gets unless told: one where the process may use a second
    core and can fork it (spawned, a worker would import mmtrans first); else none."""
    return 1 if usable_cores() >= 2 and can_fork() else 0


class CheckPool:
    """`processes` worker processes that run the checks of a run's answers. Made before the
    run opens its store or starts a thread, so that they can be forked."""

    def __init__(self, processes: int, src: str, tgt: str, method: str | None = None
                 ) -> None:
        #: How the workers were started: "fork" or "spawn" (`method`: tests choose).
        self.method = method or ("fork" if can_fork() else "spawn")
        context = multiprocessing.get_context(self.method)
        self._workers: list[_Worker] = []
        for _ in range(processes):
            self._workers.append(_Worker(context, src, tgt, self._workers))
        self._opened: asyncio.Task[None] | None = None

    @property
    def calls(self) -> int:
        """Calls made to the workers (for tests and benches)."""
        return sum(w.calls for w in self._workers)

    @property
    def pairs(self) -> int:
        """The pairs those calls carried."""
        return sum(w.pairs for w in self._workers)

    async def check(self, pairs: Pairs) -> list[CheckResult]:
        """`check_all(pairs)` in a worker, awaited without blocking the loop."""
        return await self._call(check_all, pairs)

    async def parse_and_check(self, answers: list[Answer]) -> list[Checked]:
        """`parse_and_check(answers)` in a worker, awaited without blocking the loop."""
        return await self._call(parse_and_check, answers)

    async def _call(self, function: Callable[[list[Any], str, str], list[Any]],
                    items: list[Any]) -> Any:
        """`function(items, src, tgt)` in the worker with the fewest calls outstanding."""
        loop = asyncio.get_running_loop()
        if self._opened is None or self._opened.get_loop() is not loop:  # one opening for
            self._opened = loop.create_task(self._open())  # all the checks that wait for it
        await asyncio.shield(self._opened)  # (a caller cancelled cancels it for no other)
        live = [w for w in self._workers if w.failed is None] or self._workers
        worker = min(live, key=lambda w: len(w.sent))
        future: asyncio.Future[Any] = loop.create_future()
        worker.send(function, items, future)
        return await future

    async def _open(self) -> None:
        for worker in self._workers:
            await worker.open()

    async def stop(self) -> None:
        """Detach from the running event loop (the workers then exit)."""
        for worker in self._workers:
            await worker.stop()
        self._opened = None

    def close(self) -> None:
        """Wait for the workers to exit."""
        for worker in self._workers:
            worker.close()
