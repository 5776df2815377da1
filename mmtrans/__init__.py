"""mmtrans: translate annotated IE datasets with an LLM, keeping every label and span true.

    import mmtrans
    mmtrans.translate("ner.json", "run.db", mmtrans.Settings(src="ja", tgt="en", labels=["scnm"]))
    mmtrans.status("run.db")   # what `mmtrans status --json` prints
    mmtrans.export("run.db", "scnm.en.json", fmt="mre")
"""

from . import (
    _gc_pause,  # first: no collection while the package is imported
    _lean,  # noqa: F401  (first: sqlite-utils without pandas)
)
from .checks import CheckResult, Problem, run_checks
from .classify import classify
from .errors import ConfigError, InputError, LabelError, MmtransError, ModelError
from .evaluate import evaluate
from .export import export
from .hf import export_hf
from .llm import Params
from .oiellm import export_oiellm
from .records import Argument, Event, Mention, Record, Relation
from .report import status
from .run import Settings, translate
from .schema_batches import export_iepile_instructions
from .split import split
from .stats import plot as stats_plot
from .stats import stats
from .verify import Verdict, check_files

__all__ = [
    "Argument", "CheckResult", "ConfigError", "Event", "InputError", "LabelError", "Mention",
    "MmtransError", "ModelError", "Params", "Problem", "Record", "Relation", "Settings",
    "export_hf", "export_iepile_instructions", "export_oiellm", "split", "stats", "stats_plot",
    "status",
    "Verdict", "check_files", "classify", "evaluate", "export", "run_checks", "translate",
]

_gc_pause.imported()
