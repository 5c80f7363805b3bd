"""Loading golden sets: the format, and bad lines reported as file:line: message."""

import json
from pathlib import Path

import pytest

from evals.errors import GoldenSetError
from evals.golden import ExpectedUnit, load_golden, parse_golden

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "handbook.jsonl"


def _problems(text: str) -> list[str]:
    with pytest.raises(GoldenSetError) as caught:
        parse_golden(text, source="set.jsonl")
    return caught.value.problems


def test_the_handbook_set_loads_with_its_name_hash_and_lines() -> None:
    golden = load_golden(GOLDEN)
    assert golden.name == "handbook"
    assert len(golden.sha256) == 64
    assert len(golden) == 7
    assert golden.lines == list(range(1, 8))
    assert golden.where(1) == f"{GOLDEN}:2"
    refunds = golden.items[0]
    assert refunds.expected == (ExpectedUnit(path="policies.md", lines=(5, 8), grade=2),)
    assert refunds.answer is not None
    assert golden.items[-1].unanswerable
    assert golden.items[-1].expected == ()


def test_every_documented_unit_shape_parses_and_grade_defaults_to_1() -> None:
    line = {
        "id": "q1",
        "question": "What must be erased?",
        "expected": [
            {"path": "./policies.md", "lines": [5, 8], "grade": 2},
            {"path": "gdpr.xml", "section": "Art. 17(1)"},
            {"path": "paper.pdf", "page": 4, "section": "3.2 Results"},
            {"text": "an exact snippet", "grade": 1},
            {"path": "src/click/core.py", "symbol": "Command.main"},
        ],
        "answer": "optional reference answer",
        "unanswerable": False,
    }
    (item,), lines = parse_golden("\n" + json.dumps(line) + "\n\n", source="set.jsonl")
    assert lines == [2]
    units = item.expected
    assert units[0].path == "policies.md"  # "./" is normalised away
    assert units[4].path == "src/click/core.py"  # a leading src/ is kept
    assert [u.grade for u in units] == [2, 1, 1, 1, 1]
    assert units[2].public() == {
        "path": "paper.pdf",
        "page": 4,
        "section": "3.2 Results",
        "grade": 1,
    }


class TestBadLines:
    def test_not_json_names_the_line(self) -> None:
        text = '{"id": "q1", "question": "q", "unanswerable": true}\n{"id": "q2",\n'
        (problem,) = _problems(text)
        assert problem.startswith("set.jsonl:2: not JSON (Expecting property name")
        assert problem.endswith("at column 13)")

    def test_every_bad_line_is_reported_not_only_the_first(self) -> None:
        text = "\n".join(
            [
                '{"id": "ok", "question": "q", "unanswerable": true}',
                "[1, 2]",
                '{"id": "q3", "question": "q"}',
                '{"id": "q4", "question": "q", "expected": [{"lines": [1, 2]}]}',
                '{"id": "q5", "question": "q", "expected": [{"path": "a.md", "lines": [9, 2]}]}',
                '{"id": "q6", "question": "q", "expected": [{"path": "a.md", "grade": 0}]}',
                '{"id": "q7", "question": "q", "expected": [{"path": "a.md", "line": [1, 2]}]}',
                '{"id": "q8", "question": "q", "unanswerable": true, "expected": [{"path": "a"}]}',
                '{"id": "ok", "question": "again", "unanswerable": true}',
                '{"question": "no id", "unanswerable": true}',
            ]
        )
        problems = _problems(text)
        assert [p.split(": ", 1)[0] for p in problems] == [f"set.jsonl:{n}" for n in range(2, 11)]
        by_line = dict(p.split(": ", 1) for p in problems)
        assert by_line["set.jsonl:2"] == "each line must be a JSON object"
        assert '"expected" is empty' in by_line["set.jsonl:3"]
        assert by_line["set.jsonl:4"] == 'expected[0]: "lines" needs a "path"'
        assert by_line["set.jsonl:5"].startswith("expected[0].lines: lines must be [first, last]")
        assert by_line["set.jsonl:6"].startswith("expected[0].grade: ")
        assert by_line["set.jsonl:7"].startswith("expected[0].line: Extra inputs")
        assert "unanswerable item lists no" in by_line["set.jsonl:8"]
        assert by_line["set.jsonl:9"] == "duplicate id 'ok' (first on line 1)"
        assert by_line["set.jsonl:10"].startswith("id: Field required")

    def test_a_unit_needs_a_path_or_a_text(self) -> None:
        text = '{"id": "q", "question": "q", "expected": [{"grade": 2}]}'
        assert _problems(text) == ['set.jsonl:1: expected[0]: a unit needs a "path" or a "text"']

    def test_an_empty_file_has_no_items(self) -> None:
        assert _problems("\n\n") == ["set.jsonl: no items"]


def test_missing_and_non_utf8_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(GoldenSetError, match="no such file"):
        load_golden(tmp_path / "missing.jsonl")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"id": "q", "question": "caf\u00e9"}'.encode("latin-1"))
    with pytest.raises(GoldenSetError, match=r"latin.jsonl: not UTF-8"):
        load_golden(latin)


def test_a_long_list_of_problems_is_cut_in_the_message() -> None:
    text = "\n".join("nope" for _ in range(30))
    with pytest.raises(GoldenSetError) as caught:
        parse_golden(text, source="set.jsonl")
    assert len(caught.value.problems) == 30
    lines = caught.value.message.splitlines()
    assert len(lines) == 21
    assert lines[-1] == "... and 10 more"
