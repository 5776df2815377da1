"""Runs that cannot go on: how long `mmtrans translate` keeps going, and how many requests it
sends, against each way a model server fails (mmtrans/faults.py), with the CLI's defaults.

Each run is a real `mmtrans translate` process over 20 records, against a FaultServer on
127.0.0.1 in this process; a run still going after --cap seconds is stopped with SIGTERM
(then SIGKILL) and shown as "still running". `--code DIR` runs another checkout's mmtrans
(the servers stay this one's), to show the figures before a change:

    python bench/stops/run.py                       # this checkout
    python bench/stops/run.py --code /work/main     # before
    python bench/stops/run.py --forms hang --timeout 60 --cap 400
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmtrans.faults import FORMS, FaultServer, closed_port_url

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "samples" / "stockmark-ner-20.json"
DEFAULT_FORMS = ["quota", "unauthorized", "forbidden", "openai-no-model", "vllm-no-model",
                 "vllm-old-no-model", "ollama-no-model", "hang", "drop", "close", "dead",
                 "rate-limit"]


def run_one(form: str, code: Path, cap: float, timeout: float | None, workdir: Path
            ) -> dict[str, object]:
    db = workdir / f"{form}.db"
    args = [sys.executable, "-m", "mmtrans", "translate", str(SAMPLE), "--src", "ja",
            "--tgt", "en", "--labels", "scnm", "--db", str(db), "--model",
            "fake" if form in ("hang", "drop", "close", "dead", "rate-limit") else "nope"]
    if timeout is not None:
        args += ["--timeout", str(timeout)]
    env = {**os.environ, "PYTHONPATH": str(code), "OPENAI_API_KEY": "sk-test"}
    env.pop("OPENAI_BASE_URL", None)
    server = None if form == "dead" else FaultServer(form, good_after=2 if form == "rate-limit"
                                                     else None)
    url = closed_port_url() if server is None else server.base_url
    if server is not None:
        server.__enter__()
    started = time.monotonic()
    # cwd is the code's: `python -m` puts the working directory first on the path
    process = subprocess.Popen([*args, "--base-url", url], env=env, cwd=code,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=cap)
        status: object = process.returncode
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        status = "still running"
    seconds = time.monotonic() - started
    if server is not None:
        server.__exit__(None, None, None)
    lines = [line for line in output.splitlines()
             if line.startswith(("stopped:", "error:")) or "record(s) failed" in line
             or " translated (" in line]
    return {"form": form, "exit": status, "seconds": round(seconds, 1),
            "requests": server.requests if server is not None else None,
            "line": (lines[-1] if lines else "(nothing printed)")[:150]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--forms", nargs="*", default=DEFAULT_FORMS,
                        choices=[*FORMS, "dead"])
    parser.add_argument("--cap", type=float, default=60.0, help="seconds before SIGTERM")
    parser.add_argument("--timeout", type=float, default=None,
                        help="--timeout for translate (default: the CLI's, 60 s)")
    options = parser.parse_args()
    options.code = options.code.resolve()
    print(f"code: {options.code}  load: {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}  cap: {options.cap:g} s  "
          f"timeout: {options.timeout or 'default'}")
    with tempfile.TemporaryDirectory() as tmp:
        for form in options.forms:
            row = run_one(form, options.code, options.cap, options.timeout, Path(tmp))
            print(json.dumps(row, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
