"""Reports over a store: records by status, one run's accounting (`status`), every run
with its counts (`runs`), and what each attempt cost."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ..datasets import DatasetNames
from .records import Records
from .reviews import Reviews
from .runs import LAST_USED_FIRST, Runs
from .translations import Translations


class Reports(Runs, Records, Translations, Reviews):
    def counts(self, run_id: str) -> dict[str, int]:
        """Records of the run by current status (pending: no translation row yet)."""
        records = self.record_count(run_id)
        counts = Counter(self.latest_statuses(run_id))
        return {"records": records, "accepted": counts["accepted"], "flagged": counts["flagged"],
                "failed": counts["failed"],
                "pending": records - counts["accepted"] - counts["flagged"] - counts["failed"]}

    def status(self, run_id: str | None = None) -> dict[str, Any]:
        """One run's accounting (default: the run last used): items read per file, records
        by status, problems, the requests it used and their tokens, attempts and reviews."""
        run_id = self.resolve_run(run_id)
        codes: Counter[str] = Counter()
        for t in self.latest_translations(run_id).values():
            if t.status != "accepted":
                codes.update({p["code"] for p in t.problems})
        decisions = self.decisions(run_id)
        reviewed = Counter(review.decision for review in decisions.values())
        reasons = Counter(r.reason for r in decisions.values()
                          if r.decision == "reject" and r.reason)
        usage = next(self._db.query("""
            select count(*) as n, coalesce(sum(tokens_in), 0) as tin,
                   coalesce(sum(tokens_out), 0) as tout from requests
            where key in (select request_key from translations where run_id = ?)""", [run_id]))
        files = self.accounting(run_id)
        return {
            "run": run_id,
            **self.counts(run_id),
            "rejects": sum(f["rejects"] for f in files),
            "items_read": sum(f["items_read"] or 0 for f in files),
            "files": files,
            "requests": usage["n"],
            "tokens_in": usage["tin"],
            "tokens_out": usage["tout"],
            "problems": dict(codes.most_common()),
            "attempts": self.attempt_stats([run_id]),
            "reviews": {"accepted": reviewed["accept"], "edited": reviewed["edit"],
                        "rejected": reviewed["reject"]},
            "reject_reasons": dict(reasons.most_common()),
        }

    def attempt_stats(self, run_ids: list[str]) -> dict[str, dict[str, int]]:
        """Per attempt (0 = first answer, 1.. = repair turns): translations made, records
        accepted at that attempt (for repairs: rescued), and the tokens it cost."""
        if not run_ids:
            return {}
        marks = ",".join("?" for _ in run_ids)
        # A request shared by several records (--pack, identical inputs) is paid once.
        sql = f"""
            select t.attempt, count(*) as n, sum(t.status = 'accepted') as accepted,
                   (select coalesce(sum(r.tokens_in + r.tokens_out), 0) from requests r
                    where r.key in (select request_key from translations
                                    where run_id in ({marks}) and attempt = t.attempt
                                    and status != 'failed')) as tokens
            from translations t
            where t.run_id in ({marks}) and t.status != 'failed'
            group by t.attempt order by t.attempt
        """
        return {str(row["attempt"]): {"translations": row["n"], "accepted": row["accepted"],
                                      "tokens": row["tokens"]}
                for row in self._db.query(sql, [*run_ids, *run_ids])}

    def runs(self) -> list[dict[str, Any]]:
        """Every run, last used first, with its settings and record counts; `dataset` is
        its input's name below the folder the store's inputs share (`NER/train.json`)."""
        out = []
        rows = list(self._db.query(f"select * from runs {LAST_USED_FIRST}"))
        names = DatasetNames.of(rows)
        for row in rows:
            counts = self.counts(row["id"])
            out.append({"id": row["id"], "dataset": names.run(row),
                        "input": row["input_path"], "format": row["format"],
                        "src": row["src"], "tgt": row["tgt"], "model": row["model"],
                        "endpoint": row["base_url"], "labels": json.loads(row["labels"] or "[]"),
                        "prompt": f"{row['prompt_name']} v{row['prompt_version']}",
                        "strategy": row["strategy"], "params": json.loads(row["params"] or "{}"),
                        "created": row["created"], "last_used": row.get("last_used"),
                        **counts})
        return out
