"""Writing output files: whole or not at all, never over the run's input, never over a file
the user did not agree to replace.

A file is written to a temporary file beside its target and renamed onto it, so a reader
never sees half a file and a failure (an exception, Ctrl-C, a full disk) leaves the target as
it was. The temporary file is named `.<name>.mmtrans-tmp-<pid>-<random>`: one left behind by
a process killed with SIGKILL is recognisable, and the next write to that target removes it
once its process is gone.

Which files may be replaced is the caller's policy, set for a block with `writing()`:

    with writing(force=False, protected=[run_input]):
        formats.write(records, out, fmt)   # every file it writes is checked
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import OutputError

TMP_MARK = ".mmtrans-tmp-"
_LEFTOVER = re.compile(re.escape(TMP_MARK) + r"(\d+)-")


@dataclass(frozen=True)
class Policy:
    """What the writes of one command may replace."""

    force: bool = False
    protected: tuple[Path, ...] = ()


# None: no command set a policy (a library caller, or a scratch file): any file is replaced.
_policy: contextvars.ContextVar[Policy | None] = contextvars.ContextVar("policy", default=None)


@contextmanager
def writing(force: bool = False, protected: Iterable[str | Path | None] = ()) -> Iterator[None]:
    """Inside: every `atomic_write` refuses a path in `protected` (or inside a protected
    folder) even with `force`, and an existing file unless `force`."""
    policy = Policy(force, tuple(Path(p).resolve() for p in protected if p))
    token = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(token)


def target_of(path: str | Path) -> Path:
    """The file a write to `path` replaces: through symlinks, so a link stays a link."""
    return Path(path).resolve()


def check_target(path: str | Path, policy: Policy | None = None) -> Path:
    """The file to write for `path`, or OutputError saying why it may not be written."""
    policy = policy if policy is not None else _policy.get()
    target = target_of(path)
    if target.is_dir():
        raise OutputError(path, f"{path} is a folder; name a file to write")
    if policy is None:
        return target
    for protected in policy.protected:
        if target == protected:
            raise OutputError(path, f"{path} is the run's input; it is never replaced "
                                    "(name another file)")
        if protected in target.parents:
            raise OutputError(path, f"{path} is inside the run's input folder {protected}; "
                                    "nothing there is replaced (name another place)")
    if not policy.force and target.exists():
        raise OutputError(path, f"{path} exists; pass --force to replace it")
    return target


def check_folder(folder: str | Path, force: bool) -> None:
    """A folder an export fills with several files: refused when it is a file, or when it
    already holds files and `force` is not given (the files are checked one by one too)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(folder, f"{folder} is a file; this export writes a folder")
    if not force and folder.is_dir() and any(folder.iterdir()):
        raise OutputError(folder, f"{folder} exists and is not empty; pass --force to "
                                  "write into it")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def clean_leftovers(target: Path) -> list[Path]:
    """Remove the temporary files of earlier writes to `target` whose process is gone."""
    removed = []
    for tmp in target.parent.glob(f".{glob_escape(target.name)}{TMP_MARK}*"):
        match = _LEFTOVER.search(tmp.name[len(target.name) + 1:])
        if match and not _alive(int(match.group(1))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


_umask_lock = threading.Lock()


def _umask() -> int:
    with _umask_lock:  # reading the umask means setting it: no other thread may see 0
        mask = os.umask(0)
        os.umask(mask)
    return mask


def _mode_for(target: Path) -> int:
    """The mode a new file gets from the umask; a replaced file keeps its own."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


@contextmanager
def atomic_write(path: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A file object whose content replaces `path` (its symlink's target) when the block
    ends; on any failure the target is left as it was and no temporary file remains.
    OSError (a full disk, a read-only folder, no permission) becomes OutputError."""
    target = check_target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(target)
        fd, tmp = tempfile.mkstemp(dir=target.parent,
                                   prefix=f".{target.name}{TMP_MARK}{os.getpid()}-")
    except OSError as e:
        raise OutputError(path, f"cannot write {path}: {e.strerror or e}") from None
    try:
        os.fchmod(fd, _mode_for(target))  # mkstemp makes 0600
        with (os.fdopen(fd, "wb") if binary else
              os.fdopen(fd, "w", encoding="utf-8")) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # a full disk shows here, before the target is touched
        os.replace(tmp, target)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(path, f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path (ending in `suffix`) for a writer that wants a name, not a file
    object; renamed onto `path` when the block ends, removed on any failure."""
    target = check_target(path)
    tmp = target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}-{suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(path, f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    """`path` holds `text` (UTF-8), written as `atomic_write` writes."""
    with atomic_write(path) as f:
        f.write(text)


def write_json_values(values: Iterator[Any], path: str | Path) -> int:
    """A `.jsonl` path gets JSON Lines, any other a JSON array. Returns how many were written."""
    count = 0
    lines = str(path).endswith(".jsonl")
    with atomic_write(path) as f:
        if not lines:
            f.write("[\n")
        for value in values:
            if not lines and count:
                f.write(",\n")
            f.write(json.dumps(value, ensure_ascii=False))
            if lines:
                f.write("\n")
            count += 1
        if not lines:
            f.write("\n]\n")
    return count


def check_output(path: str | Path, force: bool = False,
                 protected: Iterable[str | Path | None] = ()) -> Path:
    """OutputError now if `path` may not be written (before the work that fills it)."""
    with writing(force, protected):
        return check_target(path)


def write_output(path: str | Path, text: str, force: bool = False,
                 protected: Iterable[str | Path | None] = ()) -> None:
    """`write_text` under the policy `writing(force, protected)`."""
    with writing(force, protected):
        write_text(path, text)
