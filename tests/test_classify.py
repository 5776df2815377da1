"""`mmtrans classify`: text labels proposed by the model (real HTTP to the scripted server),
confirmed or edited on the review page, exported as MRE records with the confirmed label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

import mmtrans
from mmtrans.classify import read_label
from mmtrans.cli import app
from mmtrans.formats import mre
from mmtrans.review import make_app
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply
from tests.conftest import DATA

CROSSNER = DATA / "universal-ner" / "CrossNER_AI.json"


def script(payload, request):
    text = payload["text"]
    if "neural" in text.lower():
        return Reply('{"label": "Machine Learning"}')
    if "robot" in text.lower():
        return Reply("Robotics")  # one short line: read as the label
    if len(text) % 5 == 0:
        return Reply("Here are some thoughts.\nThe text is about several things at once.")
    return Reply('```json\n{"label": "Artificial Intelligence"}\n```')


@pytest.fixture
def source(tmp_path: Path) -> Path:
    items = json.loads(CROSSNER.read_text(encoding="utf-8"))[:130]  # 10 texts
    path = tmp_path / "tconer.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return path


def test_read_label_takes_json_or_one_short_line_and_refuses_the_rest() -> None:
    assert read_label('{"label": "  Computer   Vision "}') == "Computer Vision"
    assert read_label('"Robotics"\n') == "Robotics"
    for bad in ('{"label": 3}', "", "two\nlines", '{"name": "x"}', "x" * 61):
        with pytest.raises(ValueError):
            read_label(bad)


def test_proposals_are_reviewed_on_the_existing_page_and_exported_with_their_label(
        tmp_path: Path, source: Path) -> None:
    db = tmp_path / "tconer.db"
    with FakeLLM(script) as llm:
        settings = mmtrans.Settings(src="en", tgt="en", base_url=llm.base_url, model="fake")
        result = mmtrans.classify(source, db, settings)
        sent = len(llm.requests)
        again = mmtrans.classify(source, db, settings)  # resumes: failed ones again, cached
        assert len(llm.requests) == sent == 10 and again["failed"] == result["failed"]
    assert result["done"] == 10 and result["flagged"] + result["failed"] == 10
    assert result["failed"] >= 1 and again["skipped"] == result["flagged"]
    run_id = result["run_id"]
    with Store(db) as store:
        latest = store.latest_translations(run_id)
    proposed = {t.target.label for t in latest.values() if t.status == "flagged"}
    assert proposed <= {"Machine Learning", "Robotics", "Artificial Intelligence"}
    assert all(t.problems[0]["code"] == ("proposed_label" if t.status == "flagged"
                                         else "format") for t in latest.values())

    client = TestClient(make_app(db))
    queue = client.get("/api/queue").json()["entries"]
    flagged = [e for e in queue if e["status"] == "flagged"]
    assert len(flagged) == result["flagged"] and flagged[0]["codes"] == ["proposed_label"]
    first, second = flagged[0], flagged[1]
    view = client.get("/api/record", params={"run": run_id, "id": first["id"]}).json()
    assert "confirm the proposed label" in view["problems"][0]["message"]
    body = {"run": run_id, "id": first["id"], "decision": "accept", "annotator": "kim",
            "seen": 0}
    assert client.post("/api/decision", json=body).status_code == 200
    second_view = client.get("/api/record", params={"run": run_id, "id": second["id"]}).json()
    edited = {"text": second_view["target"]["text"], "label": "Natural Language Processing",
              "mentions": [{"label": m["label"], "text": m["text"]}
                           for m in second_view["target"]["mentions"]]}
    body = {"run": run_id, "id": second["id"], "decision": "edit", "annotator": "kim",
            "seen": 0, "record": edited}
    assert client.post("/api/decision", json=body).status_code == 200

    out = tmp_path / "tconer.mre.json"
    exported = mmtrans.export(db, out, fmt="mre", run_id=run_id)
    assert exported.written == 2  # only the confirmed ones
    items = json.loads(out.read_text(encoding="utf-8"))
    records = [mre.parse(i, str(n), frozenset()) for n, i in enumerate(items)]
    assert [r.label for r in records] == [view["target"]["label"], "Natural Language Processing"]
    assert all(r.task == "NER" and r.mentions for r in records)
    assert all(m.text in r.text for r in records for m in r.mentions)


def test_classify_command_reports_and_exits_2_without_a_model(tmp_path: Path,
                                                              source: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["classify", str(source), "--src", "en", "--db",
                                 str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "no model server" in result.output
    with FakeLLM(script) as llm:
        result = runner.invoke(app, ["classify", str(source), "--src", "en", "--db",
                                     str(tmp_path / "x.db"), "--base-url", llm.base_url])
    assert result.exit_code == 1, result.output  # the script's two-line replies fail
    assert "label(s) proposed" in result.output and "--format mre" in result.output
    assert "record(s) failed" in result.output
