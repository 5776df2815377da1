"""Importing mmtrans runs no full garbage collection (its objects live as long as the
process: a full collection during the import scans them all and frees none), and leaves the
collector as it found it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COUNT = """
import gc
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and info["generation"] == 2
                    and collections.append(info))
{before}
import mmtrans.cli
print(len(collections), gc.isenabled())
"""


def imported(before: str = "") -> str:
    done = subprocess.run([sys.executable, "-c", COUNT.format(before=before)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_importing_mmtrans_runs_no_full_collection_and_leaves_the_collector_on():
    assert imported() == "0 True"


def test_a_collector_turned_off_before_the_import_stays_off():
    assert imported("gc.disable()") == "0 False"


EXIT = """
import gc, sys
sys.argv = ["mmtrans", "--help"]
from mmtrans.cli import main
class Marker:
    def __del__(self):
        print("collected at exit", flush=True)
gc.disable()  # nothing collects it but the interpreter's last collection, at exit
marker = Marker(); marker.cycle = marker; del marker
main()
"""


def test_a_command_ends_without_the_interpreters_last_collection():
    """It scanned everything the command made (0.25 s of a packed run) to free nothing that
    outlives the process."""
    done = subprocess.run([sys.executable, "-c", EXIT], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert "collected at exit" not in done.stdout


def test_mmtrans_reads_urls_with_the_sdks_httpx2_and_imports_no_httpx():
    """httpx (1), a second HTTP library, cost 50 ms of every command's start only to read
    endpoint URLs."""
    done = subprocess.run([sys.executable, "-c", "import sys, mmtrans.cli; "
                           "print('httpx' in sys.modules, 'httpx2' in sys.modules)"],
                          cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
