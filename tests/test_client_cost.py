"""What a run costs the client itself: the store holds a prompt's fixed part once, and a
resume tells what is done from status columns without decoding translations."""

from __future__ import annotations

import json

import mmtrans
from mmtrans.store import Store


def settings(llm) -> mmtrans.Settings:
    return mmtrans.Settings(src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url,
                            model="fake")


def test_the_prompts_fixed_part_is_stored_once_not_in_every_request(tmp_path, sample, llm):
    db = tmp_path / "run.db"
    assert mmtrans.translate(sample(10), db, settings(llm))["accepted"] == 10
    with Store(db) as store:
        assert store._db["prompt_prefixes"].count == 1
        rows = list(store._db.query("select key, messages, prefix from requests"))
        assert len(rows) == 10 and all(len(json.loads(r["messages"])) == 1 for r in rows)
        whole = sorted(json.dumps(store.request_messages(r["key"]), ensure_ascii=False)
                       for r in rows)
    sent = sorted(json.dumps(r["messages"], ensure_ascii=False) for r in llm.requests)
    assert whole == sent  # what the server was asked, byte for byte


def test_a_resume_reads_what_is_done_without_decoding_translations(tmp_path, sample, llm):
    path, db = sample(8), tmp_path / "run.db"
    mmtrans.translate(path, db, settings(llm))
    with Store(db) as store, store._db.conn:
        # Decoding any stored translation would now fail: a resume must not need to.
        store._db.execute("update translations set target = '{not json', problems = 'x'")
    sent = len(llm.requests)
    result = mmtrans.translate(path, db, settings(llm))
    assert (result["skipped"], result["done"], len(llm.requests)) == (8, 0, sent)


def test_a_resume_with_named_tables_reads_the_store_not_the_input(tmp_path, sample, llm,
                                                                   monkeypatch):
    from mmtrans import run

    path, db = sample(10), tmp_path / "run.db"
    first = mmtrans.translate(path, db, mmtrans.Settings(
        src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, model="fake", limit=4))
    assert first["done"] == 4

    def no_reading(*args, **kwargs):
        raise AssertionError("the input was parsed again")

    monkeypatch.setattr(run.formats, "read", no_reading)
    monkeypatch.setattr(run.formats, "detect", no_reading)
    rest = mmtrans.translate(path, db, settings(llm))
    assert (rest["skipped"], rest["done"], rest["records"], rest["items"]) == (4, 6, 10, 10)


def test_the_language_checks_detector_answers_as_langdetect_does_on_real_data():
    """mmtrans.language.detect_langs is langdetect's algorithm made cheaper: on real text
    of every language the checks meet (Japanese, English, Chinese), the same guesses with
    the same probabilities to the last bit. (The whole of stockmark, CrossNER and IEPile
    was compared once, for every problem list of the checks: the same.)"""
    from pathlib import Path

    import pytest
    from langdetect import DetectorFactory
    from langdetect import detect_langs as langdetect_langs

    from mmtrans import formats
    from mmtrans.language import detect_langs
    from mmtrans.records import Record

    from .conftest import DATA
    from .conftest import language_answers as answers

    DetectorFactory.seed = 0
    paths = [DATA / "stockmark-ner-wikipedia/ner.json",
             DATA / "universal-ner/CrossNER_AI.json", *sorted(DATA.glob("iepile/*/test.json"))]
    texts = [r.text for path in paths if Path(path).is_file()
             for r in list(formats.read(path))[::7] if isinstance(r, Record)]
    if len(texts) < 100:
        pytest.skip(f"needs the real datasets in {DATA}")

    assert answers(detect_langs, texts) == answers(langdetect_langs, texts)
    assert len(texts) > 800


def test_the_language_check_stops_langdetects_trials_early_only_when_the_answer_is_settled():
    """guess_languages(text, sure_of=(lang, share)) ends the trials as soon as `lang` cannot
    fall below `share`: on real text in and not in each language sought, None only where
    langdetect's full answer gives that language at least `share`, and otherwise the very
    answer detect_langs gives; and it does end early for text in the language sought."""
    from pathlib import Path

    import pytest
    from langdetect import DetectorFactory, LangDetectException

    from mmtrans import formats
    from mmtrans.language import detect_langs, guess_languages
    from mmtrans.records import Record

    from .conftest import DATA

    DetectorFactory.seed = 0
    paths = [DATA / "stockmark-ner-wikipedia/ner.json",
             DATA / "universal-ner/CrossNER_AI.json", *sorted(DATA.glob("iepile/*/test.json"))]
    texts = [r.text for path in paths if Path(path).is_file()
             for r in list(formats.read(path))[::23] if isinstance(r, Record)]
    if len(texts) < 100:
        pytest.skip(f"needs the real datasets in {DATA}")
    # Texts half in one language, half in another: trials that disagree, shares in between.
    mixed = [f"{a[:60]} {b[:60]}" for a, b in zip(texts, texts[len(texts) // 2:])]
    settled, between = 0, 0
    for text in texts + mixed:
        try:
            full = [(g.lang, g.prob) for g in detect_langs(text)]
        except LangDetectException:
            continue
        for lang in ("en", "ja", "zh", "de"):
            share = max((p for name, p in full if name.split("-")[0] == lang), default=0.0)
            between += 0.1 < share < 0.9
            for bound in (0.3, 0.6):
                early = guess_languages(text, sure_of=(lang, bound))
                if early is None:
                    settled += 1
                    assert share >= bound, (text, lang, full)
                else:
                    assert [(g.lang, g.prob) for g in early] == full
    assert settled > 50 and between > 10


def test_what_the_run_starts_with_is_out_of_the_collectors_sight_while_it_runs(
        tmp_path, sample):
    """A full garbage collection scanned every imported module's objects: 125 ms on 5,343
    records, a pause in which sends reach a per-second limiter late. During the run what
    existed at its start is frozen; after it, nothing is left frozen."""
    import gc

    from mmtrans.testing import FakeLLM, Reply, good_translation

    frozen_while_answering: list[int] = []

    def script(payload, request):
        frozen_while_answering.append(gc.get_freeze_count())
        return Reply(json.dumps(good_translation(payload), ensure_ascii=False))

    with FakeLLM(script) as llm:
        assert mmtrans.translate(sample(3), tmp_path / "run.db", settings(llm))["accepted"] == 3
    assert len(frozen_while_answering) == 3
    assert min(frozen_while_answering) > 10_000  # the modules, the client, the tables
    assert gc.get_freeze_count() == 0


def test_a_request_key_is_the_content_key_of_the_same_request_byte_for_byte():
    """The cache key written the quick way (the prompt's fixed messages' JSON kept) is the
    digest content_key gives: every store's cached answers stay found."""
    from mmtrans.store import content_key, request_key
    from mmtrans.store._core import prefix_key

    fixed = [{"role": "system", "content": "Translate \"exactly\" 日本語 → English\n\t\\"},
             {"content": "例: {\"text\": \"東京\"}", "role": "user"},
             {"role": "assistant", "content": "{\"text\": \"Tokyo\"}"}]
    shapes = [
        fixed + [{"role": "user", "content": '{"text": "大阪", "entities": []}'}],
        fixed,
        fixed[:1],
        [],
        fixed + [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}],
        [{"role": "user", "content": [{"type": "text", "text": "part"}]}, *fixed],
        [{"role": "user", "content": "a", "name": "n"}, *fixed],
        [{"role": "user", "content": None}, *fixed],
    ]
    for _ in range(2):  # the second time from what was kept
        for messages in shapes:
            for params in ({}, {"temperature": 0.0, "seed": 7, "max_tokens": 100}):
                assert request_key("http://127.0.0.1:8000/v1", "m-1", messages, params) == \
                    content_key("http://127.0.0.1:8000/v1", "m-1", messages, params)
        assert prefix_key(fixed) == content_key(fixed)


def test_the_stores_timestamp_is_formatted_once_a_second_and_follows_the_clock(monkeypatch):
    import time
    from datetime import datetime, timezone

    from mmtrans.store import _core

    clock = [1_796_000_000.2]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    first = _core.now()
    assert first == datetime.fromtimestamp(1_796_000_000, timezone.utc).isoformat(
        timespec="seconds")
    clock[0] += 0.7  # the same second
    assert _core.now() is first
    clock[0] += 0.2  # the next one
    assert _core.now() == "2026-11-30T00:53:21+00:00" != first
