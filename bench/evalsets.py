"""Turn the shared retrieval sets into corpus folders and golden sets for `vouch eval`.

    python bench/evalsets.py [OUT] [--sets scifact,obliqa,click] [--limit N] [--source DIR]

OUT defaults to /tmp/vouch-evalsets and must lie outside this repository: the corpora carry
third-party licences (see the evalsets README). For each set it writes ``OUT/<set>/corpus/``
and ``OUT/<set>/<set>.jsonl`` (the format of evals/golden.py), then prints how to score them:

* scifact: one ``<_id>.txt`` per abstract (title, newline, text); a claim expects
  ``{"path": "<_id>.txt"}`` for each abstract it cites.
* obliqa: the 40 rendered documents ``NN.txt``; a question expects
  ``{"path": "NN.txt", "lines": [first, last]}`` for each gold passage (docs/spans.tsv).
* click: click 8.5.0 from its PyPI wheel (``pip download``), unpacked so paths read
  ``click/core.py``; a question expects ``{"path": "click/<file>.py", "lines": [s, e],
  "grade": g}`` per gold symbol (qrels_symbol.tsv, leading ``src/`` dropped).

``--limit N`` keeps the first N questions of each set; the corpus is always whole.
"""

import argparse
import csv
import json
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SOURCE = Path("/work/shared/evalsets")
OUT = Path("/tmp/vouch-evalsets")
SETS = ("scifact", "obliqa", "click")
CLICK = "click==8.5.0"


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as rows:
        return list(csv.DictReader(rows, delimiter="\t", quoting=csv.QUOTE_NONE))


def write_golden(path: Path, items: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")


def questions(
    queries: Path, expected: dict[str, list[dict[str, Any]]], limit: int | None
) -> list[dict[str, Any]]:
    """Items for the queries that have gold units, in the queries file's order."""
    items = [
        {"id": q["_id"], "question": q["text"], "expected": expected[q["_id"]]}
        for q in read_jsonl(queries)
        if expected.get(q["_id"])
    ]
    return items[:limit] if limit is not None else items


def scifact(source: Path, corpus: Path, limit: int | None) -> list[dict[str, Any]]:
    for doc in read_jsonl(source / "corpus.jsonl"):
        (corpus / f"{doc['_id']}.txt").write_text(doc["title"] + "\n" + doc["text"], "utf-8")
    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in read_tsv(source / "qrels" / "train.tsv"):
        unit: dict[str, Any] = {"path": f"{row['corpus-id']}.txt"}
        if int(row["score"]) != 1:
            unit["grade"] = int(row["score"])
        expected[row["query-id"]].append(unit)
    return questions(source / "queries.jsonl", expected, limit)


def obliqa(source: Path, corpus: Path, limit: int | None) -> list[dict[str, Any]]:
    docs = source / "docs"
    for doc in sorted(docs.glob("[0-9][0-9].txt")):
        shutil.copyfile(doc, corpus / doc.name)
    spans = {row["corpus-id"]: row for row in read_tsv(docs / "spans.tsv")}
    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in read_tsv(source / "qrels" / "dev.tsv"):
        span = spans[row["corpus-id"]]
        expected[row["query-id"]].append(
            {"path": span["file"], "lines": [int(span["start_line"]), int(span["end_line"])]}
        )
    return questions(source / "queries.jsonl", expected, limit)


def click(source: Path, corpus: Path, limit: int | None) -> list[dict[str, Any]]:
    downloads = corpus.parent / "download"
    downloads.mkdir(exist_ok=True)
    wheels = sorted(downloads.glob("click-8.5.0-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", CLICK, "--no-deps", "-d", str(downloads)],
            check=True,
        )
        wheels = sorted(downloads.glob("click-8.5.0-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.startswith("click/"):
                wheel.extract(name, corpus)
            elif name.endswith("LICENSE.txt"):  # BSD-3-Clause: keep it with the copy
                (corpus.parent / "LICENSE.txt").write_bytes(wheel.read(name))
    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in read_tsv(source / "qrels_symbol.tsv"):
        expected[row["query-id"]].append(
            {
                "path": row["path"].removeprefix("src/"),
                "lines": [int(row["start_line"]), int(row["end_line"])],
                "grade": int(row["grade"]),
            }
        )
    return questions(source / "queries.jsonl", expected, limit)


# set name -> (builder, folder in the shared evalsets)
BUILDERS = {
    "scifact": (scifact, "scifact"),
    "obliqa": (obliqa, "obliqa"),
    "click": (click, "code_click"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=OUT)
    parser.add_argument(
        "--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS)
    )
    parser.add_argument("--limit", type=int, default=None, help="questions per set (default all)")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the shared evalsets folder")
    args = parser.parse_args()

    out = args.out.resolve()
    if out == REPO or REPO in out.parents:
        parser.error(f"{out} is inside the repository; the corpora must stay out of it")
    chosen = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SETS))
    if unknown:
        parser.error(f"unknown set {', '.join(unknown)}; choose from {', '.join(SETS)}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")

    for name in chosen:
        build, folder = BUILDERS[name]
        corpus = out / name / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        items = build(args.source / folder, corpus, args.limit)
        golden = out / name / f"{name}.jsonl"
        write_golden(golden, items)
        files = sum(1 for p in corpus.rglob("*") if p.is_file())
        units = sum(len(item["expected"]) for item in items)
        print(f"{name}: {files} corpus files in {corpus}")
        print(f"{name}: {len(items)} questions, {units} expected units in {golden}")
    print("\nto score one (an expert account must exist; see `vouch user create`):")
    print("  vouch asset create --owner EXPERT --slug SET --title SET")
    print(f"  vouch ingest SET {out}/SET/corpus --wait && vouch eval SET {out}/SET/SET.jsonl")


if __name__ == "__main__":
    main()
