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
