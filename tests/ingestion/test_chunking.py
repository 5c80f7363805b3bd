"""Chunkers keep structure: heading paths, symbols and exact line spans."""

import textwrap

import pytest

from ingestion.errors import FileExcluded, FileRejected
from ingestion.files import safe_relative_path
from ingestion.readers import decode
from ingestion.sources.base import MAX_CHARS, Chunk
from ingestion.sources.code import MAX_CODE_LINES, chunk_python
from ingestion.sources.text import chunk_markdown, chunk_text


def _lines_match(source: str, chunks: list[Chunk]) -> None:
    lines = source.splitlines()
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.line_start - 1 : chunk.line_end])


class TestMarkdown:
    SOURCE = textwrap.dedent(
        """\
        Preamble before any heading.

        # Guide

        Intro to the guide.

        ## Install

        ```bash
        # not a heading: a shell comment
        pip install thing
        ```

        ## Empty

        ### Deep
        Deep text.
        """
    )

    def test_sections_carry_heading_paths_and_exact_lines(self) -> None:
        chunks = chunk_markdown("guide.md", self.SOURCE)
        assert [(c.section, c.line_start, c.line_end) for c in chunks] == [
            ("", 1, 1),
            ("Guide", 3, 5),
            ("Guide > Install", 7, 12),
            ("Guide > Empty > Deep", 16, 17),
        ]
        _lines_match(self.SOURCE, chunks)
        assert chunks[2].locator == {
            "path": "guide.md",
            "section": "Guide > Install",
            "lines": [7, 12],
        }

    def test_heading_path_is_embedded_with_the_text(self) -> None:
        chunk = chunk_markdown("guide.md", self.SOURCE)[3]
        assert chunk.embed_text.startswith("guide.md\nGuide > Empty > Deep\n")

    def test_long_section_is_split_at_paragraphs_without_losing_lines(self) -> None:
        paragraphs = [f"Paragraph {i} " + "word " * 60 for i in range(12)]
        source = "# Long\n\n" + "\n\n".join(paragraphs) + "\n"
        chunks = chunk_markdown("long.md", source)
        assert len(chunks) > 1
        assert all(len(c.text) <= MAX_CHARS for c in chunks)
        assert {c.section for c in chunks} == {"Long"}
        _lines_match(source, chunks)
        joined = "\n".join(c.text for c in chunks)
        assert all(p.strip() in joined for p in paragraphs)


def test_plain_text_groups_paragraphs_with_lines() -> None:
    source = "First paragraph.\nStill first.\n\nSecond paragraph.\n"
    (chunk,) = chunk_text("a.txt", source)
    assert (chunk.line_start, chunk.line_end) == (1, 4)
    assert chunk.locator == {"path": "a.txt", "lines": [1, 4]}


class TestPython:
    SOURCE = textwrap.dedent(
        '''\
        """Module docstring."""

        import os
        from pathlib import Path

        LIMIT = 3


        @decorator
        def top(x):
            return x


        class Small:
            def a(self):
                return 1
        '''
    )

    def test_small_neighbours_merge_with_decorators_and_module_code_apart(self) -> None:
        chunks = chunk_python("pkg/mod.py", self.SOURCE)
        assert [(c.symbol, c.line_start, c.line_end) for c in chunks] == [
            ("", 1, 6),
            ("top, Small", 9, 16),
        ]
        _lines_match(self.SOURCE, chunks)
        assert chunks[1].locator == {
            "path": "pkg/mod.py",
            "symbol": "top, Small",
            "lines": [9, 16],
        }
        # The module context (path and imports) is embedded with every chunk.
        assert "imports: os, pathlib" in chunks[1].embed_text
        assert "pkg/mod.py" in chunks[1].embed_text

    def test_large_class_is_split_by_method_with_qualified_symbols(self) -> None:
        methods = "\n".join(
            f"    def m{i}(self):\n" + "".join(f"        x{j} = {j}\n" for j in range(12))
            for i in range(8)
        )
        source = f"class Big(Base):\n    '''Doc.'''\n    attr = 1\n\n{methods}"
        chunks = chunk_python("big.py", source)
        assert chunks[0].symbol == "Big"
        assert (chunks[0].line_start, chunks[0].line_end) == (1, 4)
        assert [c.symbol for c in chunks[1:]] == [f"Big.m{i}" for i in range(8)]
        assert all("class Big(Base):" in c.embed_text for c in chunks[1:])
        _lines_match(source, chunks)

    def test_long_function_is_cut_into_windows(self) -> None:
        body = "".join(f"    y = {i}\n" for i in range(MAX_CODE_LINES * 2))
        chunks = chunk_python("long.py", f"def long():\n{body}")
        assert [c.symbol for c in chunks] == ["long"] * 3
        assert (chunks[0].line_start, chunks[-1].line_end) == (1, MAX_CODE_LINES * 2 + 1)

    def test_syntax_error_still_finds_the_definition(self) -> None:
        chunks = chunk_python("broken.py", "def broken(:\n    pass\n")
        assert [(c.kind, c.symbol, c.line_start, c.line_end) for c in chunks] == [
            ("code", "broken", 1, 2)
        ]


class TestReaders:
    @pytest.mark.parametrize(
        ("name", "clean"),
        [("a.md", "a.md"), ("./docs//b.md", "docs/b.md"), ("docs\\c.md", "docs/c.md")],
    )
    def test_safe_paths_are_normalised(self, name: str, clean: str) -> None:
        assert safe_relative_path(name) == clean

    @pytest.mark.parametrize("name", ["../a.md", "docs/../../a.md", "/etc/a.md", "C:/a.md", ""])
    def test_unsafe_paths_are_rejected(self, name: str) -> None:
        with pytest.raises(FileRejected):
            safe_relative_path(name)

    def test_decode_drops_bom_and_detects_legacy_encodings(self) -> None:
        assert decode(b"\xef\xbb\xbfhello") == "hello"
        french = "Café crème brûlée à la française, déjà vu.\n"
        assert decode(french.encode("cp1252")) == french
        russian = "Привет мир, как дела?"
        assert decode(russian.encode("cp1251")) == russian
        assert decode("hé".encode("utf-16")) == "hé"

    def test_binary_content_is_left_out(self) -> None:
        with pytest.raises(FileExcluded, match="binary"):
            decode(b"GIF89a\x00\x01\x02")
