"""Tokens per record with --pack K against one record per request.

1,000 stockmark records (tests/data) are translated from Japanese
into English against the scripted OpenAI-compatible server on 127.0.0.1, which reports usage
as tiktoken's cl100k_base counts of what it was sent and what it answered, so the figures are
real token counts of real prompts. Prints tokens per record for each K and the ratio.
Run: python bench/tokens/run.py [--records 1000] [--pack 8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import mmtrans
from mmtrans.testing import FakeLLM, Reply, answer_packed, good_translation
from mmtrans.tokens import count_messages, counter

REPO = Path(__file__).resolve().parents[2]
STOCKMARK = REPO / "tests" / "data" / "stockmark-ner-wikipedia" / "ner.json"


def measuring_server() -> FakeLLM:
    encode, _ = counter("gpt-4")

    def script(payload, request):
        content = answer_packed(payload) if "packed" in payload else \
            json.dumps(good_translation(payload), ensure_ascii=False)
        usage = {"prompt_tokens": count_messages(request["messages"], encode),
                 "completion_tokens": encode(content)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return Reply(content, usage=usage)
    return FakeLLM(script)


def tokens_per_record(source: Path, pack: int, records: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, measuring_server() as llm:
        result = mmtrans.translate(source, Path(tmp) / "run.db", mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, model="gpt-4",
            pack=pack, concurrency=16, repair=0))
        done = result["accepted"] + result["flagged"]
        return {"pack": pack, "records": done, "requests": len(llm.requests),
                "tokens_per_record": round(result["tokens"] / records, 1),
                "accepted": result["accepted"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--pack", type=int, default=8)
    args = parser.parse_args()
    items = json.loads(STOCKMARK.read_text(encoding="utf-8"))[: args.records]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "ner.json"
        source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        one = tokens_per_record(source, 1, len(items))
        packed = tokens_per_record(source, args.pack, len(items))
    ratio = packed["tokens_per_record"] / one["tokens_per_record"]
    print(f"{len(items)} stockmark records, ja->en, tokens counted with tiktoken cl100k_base")
    print("| pack | requests | tokens per record | accepted |")
    print("|---|---|---|---|")
    for row in (one, packed):
        print(f"| {row['pack']} | {row['requests']} | {row['tokens_per_record']} | "
              f"{row['accepted']} |")
    print(f"ratio (pack {args.pack} / pack 1): {ratio:.2f} (target <= 0.5)")
    print(json.dumps({"unpacked": one, "packed": packed, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
