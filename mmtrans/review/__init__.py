"""`mmtrans review`: annotators accept, edit or reject flagged records in the browser."""

from __future__ import annotations

import secrets
from pathlib import Path

from ..errors import ConfigError, InputError
from .app import Team, make_app
from .plan import parse_assign, parse_overlap

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def parse_share(value: str | None) -> float:
    """`5%` or `0.05` -> 0.05."""
    if not value:
        return 0.0
    try:
        share = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise ConfigError(f"--spot-check takes a share like 5% or 0.05, not {value!r}") from None
    if not 0 <= share <= 1:
        raise ConfigError(f"--spot-check must be between 0% and 100%, not {value!r}")
    return share


def access_token(host: str, token: str | None) -> str | None:
    """The token to require: the one given, a generated one for a non-local host, or none."""
    if token:
        return token
    return None if host in LOCAL_HOSTS else secrets.token_urlsafe(16)


def page_url(host: str, port: int, token: str | None) -> str:
    """The page's address to print: the token percent-encoded, so a token holding `&`, a
    space, `#` or any non-ASCII character reaches the server as it was given."""
    from urllib.parse import quote

    where = f"[{host}]" if ":" in host else host
    return f"http://{where}:{port}/" + (f"?token={quote(token, safe='')}" if token else "")


def loopback_hosts(host: str, port: int) -> set[str]:
    """The Host headers a loopback server answers to (anything else is DNS rebinding)."""
    return {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")} | \
        ({f"{host}:{port}"} if host != "::1" else set())


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, None, f"cannot read {what}: {e}") from None


def parse_reasons(value: str | None) -> list[str]:
    """`--reasons`: a file with one reason per line (# comments), or `a, b, c`."""
    if not value:
        return []
    lines = _read(Path(value), "reject reasons").splitlines() if Path(value).is_file() \
        else value.split(",")
    reasons = list(dict.fromkeys(x.strip() for x in lines
                                 if x.strip() and not x.strip().startswith("#")))
    if not reasons:
        raise ConfigError(f"--reasons {value!r} names no reason")
    return reasons


def guidelines_html(path: Path) -> str:
    """The guidelines file as HTML (CommonMark; raw HTML in it is escaped, not run)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).render(_read(path, "guidelines"))


def team(guidelines: Path | None = None, reasons: str | None = None,
         adjudicate: bool = False, overlap: int | None = None,
         assign: str | None = None) -> Team:
    """A review's team settings from the command line's options (`overlap` and `assign`
    are checked here, so a bad one stops before the server starts)."""
    parse_assign(assign)
    return Team(parse_reasons(reasons), guidelines_html(guidelines) if guidelines else None,
                adjudicate, parse_overlap(overlap), assign)


def serve(db: str | Path, host: str = "127.0.0.1", port: int = 8700, token: str | None = None,
          annotator: str | None = None, spot_check: float = 0.0,
          run_id: str | None = None, settings: Team | None = None) -> None:
    import uvicorn

    if not Path(db).is_file():
        raise ConfigError(f"{db}: no such database")
    hosts = loopback_hosts(host, port) if token is None and host in LOCAL_HOSTS else None
    uvicorn.run(make_app(db, annotator, spot_check, token, run_id, hosts, settings),
                host=host, port=port, log_level="warning")


__all__ = ["Team", "access_token", "guidelines_html", "loopback_hosts", "make_app",
           "page_url", "parse_reasons", "parse_share", "serve", "team"]
