"""`mmtrans.status`: one run's accounting as one dict, which the CLI only prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .estimate import spent
from .store import Store


def status(db_path: str | Path, run_id: str | None = None) -> dict[str, Any]:
    """One run's accounting (default: the run last used): items read per file, records by
    status, problems, requests and tokens with what they cost at the model's listed price
    (`cost_usd`, None when the model has no price), attempts, reviews, and for a team the
    open disagreements and agreement per pair of annotators. Opens the store to read only."""
    from .review.agreement import team_figures

    with Store(db_path, create=False) as store:
        summary = store.status(run_id)
        run = store.run(summary["run"])
        summary |= team_figures(store, summary["run"])
    cost = spent(run["model"], summary["tokens_in"], summary["tokens_out"])
    summary["model"] = run["model"]
    summary["cost_usd"] = round(cost, 4) if cost is not None else None
    return summary
