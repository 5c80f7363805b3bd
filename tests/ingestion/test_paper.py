"""Papers: sections with their numbers, pages and lines; metadata; the reference list left out."""

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reportlab.lib.pagesizes import letter
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfgen import canvas

from ingestion.errors import FileRejected
from ingestion.sources.base import MAX_CHARS, Chunk, ParsedDocument
from ingestion.sources.paper import extract_pdf_text, looks_like_paper, orcid_valid, read_paper

PAPERS = Path(__file__).parent.parent / "data" / "papers"
ORCID = "0000-0002-1825-0097"
TITLE = "Analytical Engines Revisited"
HEADER = "Vouch Test Paper - Preprint"

FILLER = (
    "The engine reads its program from punched cards and keeps intermediate values in the "
    "store, a bank of columns of figure wheels that the mill reads and writes in turn."
)

# One list of (font size, text) lines per page; body lines stay under ~90 characters, so they
# fit the page at 10 points and each is one line of the PDF.
PAGES: list[list[tuple[int, str]]] = [
    [
        (18, TITLE),
        (11, "Ada Lovelace and Grace Hopper"),
        (10, "Analytical Engine Institute, London"),
        (10, f"ORCID: {ORCID}"),
        (10, "DOI: 10.5555/Vouch.2026.42"),
        (12, "Abstract"),
        (10, "We revisit the Analytical Engine and the programs written for it. We show that the"),
        (10, "infor-"),
        (10, "mation stored in its columns suffices for the Bernoulli numbers."),
        (12, "1 Introduction"),
        (10, "Babbage designed the Analytical Engine in 1837 as a general-purpose calculating"),
        (10, "machine [1]. It was never completed, but its design anticipates the modern computer"),
        (10, "in almost every respect that matters for programming."),
        (10, "Menabrea described the engine in a paper that Lovelace translated and annotated"),
        (
            10,
            "with notes longer than the original text [2]. Those notes contain the first program.",
        ),
        (10, "We read them again with the tools of today."),
    ],
    [
        (12, "2 Methods"),
        (10, "We transcribed every program from the notes and ran it on a simulator of the engine"),
        (10, "that counts each card read and each turn of the mill. The simulator follows the"),
        (10, "published drawings as closely as the surviving descriptions allow."),
        (10, "Each program ran ten times with different inputs."),
    ],
    [
        (12, "3 Results"),
        (10, "The programs ran as described once two transcription errors were fixed."),
        (12, "3.1 Setup"),
        (10, "The simulated machine used a store of one thousand numbers of fifty digits each,"),
        (10, "the size Babbage proposed in his later plans for the engine."),
    ],
    [
        (12, "3.2 Error Analysis"),
        (10, "Rounding errors stayed below one part in a thousand for every program we ran, which"),
        (10, "matches the precision Lovelace expected from fifty-digit columns [3]."),
        (12, "4 Conclusion"),
        (10, "The notes describe a working program, and the engine would have run it."),
        (12, "Acknowledgements"),
        (10, "We thank the keepers of the Babbage papers for access to the drawings."),
        (12, "References"),
        (10, "[1] C. Babbage. On the mathematical powers of the calculating engine. Unpublished"),
        (10, "manuscript, 1837."),
        (10, "[2] L. F. Menabrea. Sketch of the Analytical Engine invented by Charles Babbage."),
        (10, "Bibliotheque Universelle de Geneve, 1842."),
        (10, "[3] A. Lovelace. Notes by the translator. Scientific Memoirs, 3:666-731, 1843."),
    ],
]


def write_pdf(
    path: Path,
    pages: list[list[tuple[int, str]]],
    *,
    encrypt: StandardEncryption | None = None,
    title: str = "",
    author: str = "",
    header: str = HEADER,
) -> bytes:
    """A PDF with one line per (size, text), a running header from page 2 and page numbers."""
    pdf = canvas.Canvas(str(path), pagesize=letter, encrypt=encrypt)
    if title:
        pdf.setTitle(title)
    if author:
        pdf.setAuthor(author)
    width, height = letter
    for number, lines in enumerate(pages, start=1):
        if number > 1 and header:
            pdf.setFont("Helvetica", 8)
            pdf.drawString(72, height - 40, header)
        y = height - 72
        for size, text in lines:
            pdf.setFont("Helvetica-Bold" if size > 10 else "Helvetica", size)
            y -= size * 1.5 if size > 10 else 13
            pdf.drawString(72, y, text)
        pdf.setFont("Helvetica", 8)
        pdf.drawCentredString(width / 2, 40, str(number))
        pdf.showPage()
    pdf.save()
    return path.read_bytes()


@pytest.fixture
def paper_pdf(tmp_path: Path) -> ParsedDocument:
    data = write_pdf(tmp_path / "engines.pdf", PAGES)
    return read_paper("papers/engines.pdf", data)


def by_section(document: ParsedDocument) -> dict[str, Chunk]:
    chunks: dict[str, Chunk] = {}
    for chunk in document.chunks:
        chunks.setdefault(chunk.section, chunk)
    return chunks


class TestPdf:
    def test_metadata_from_the_text(self, paper_pdf: ParsedDocument) -> None:
        meta = paper_pdf.meta
        assert paper_pdf.kind == "paper"
        assert meta["title"] == TITLE
        assert meta["authors"] == ["Ada Lovelace", "Grace Hopper"]
        assert meta["doi"] == "10.5555/vouch.2026.42"
        assert meta["orcids"] == [ORCID]
        assert meta["abstract"] == (
            "We revisit the Analytical Engine and the programs written for it. We show that the "
            "information stored in its columns suffices for the Bernoulli numbers."
        )
        assert meta["references"] == 3

    def test_each_section_starts_on_its_page(self, paper_pdf: ParsedDocument) -> None:
        sections = by_section(paper_pdf)
        assert list(sections) == [
            "Abstract",
            "1 Introduction",
            "2 Methods",
            "3 Results",
            "3.1 Setup",
            "3.2 Error Analysis",
            "4 Conclusion",
            "Acknowledgements",
        ]
        pages = {name: chunk.page for name, chunk in sections.items()}
        assert pages == {
            "Abstract": 1,
            "1 Introduction": 1,
            "2 Methods": 2,
            "3 Results": 3,
            "3.1 Setup": 3,
            "3.2 Error Analysis": 4,
            "4 Conclusion": 4,
            "Acknowledgements": 4,
        }
        chunk = sections["3.2 Error Analysis"]
        assert chunk.heading == "3 Results"
        assert chunk.kind == "paper"
        assert chunk.locator == {
            "path": "papers/engines.pdf",
            "page": 4,
            "section": "3.2 Error Analysis",
        }
        assert chunk.embed_text.startswith(f"{TITLE}\n3 Results > 3.2 Error Analysis\n")
        assert chunk.text.startswith("3.2 Error Analysis\n\nRounding errors stayed below")

    def test_title_block_and_references_are_not_chunks(self, paper_pdf: ParsedDocument) -> None:
        text = "\n".join(chunk.text for chunk in paper_pdf.chunks)
        for left_out in ("Ada Lovelace and Grace", ORCID, "10.5555", "Menabrea. Sketch", "1843."):
            assert left_out not in text
        assert "References" not in {chunk.section for chunk in paper_pdf.chunks}

    def test_running_header_and_page_numbers_are_dropped(self, paper_pdf: ParsedDocument) -> None:
        for chunk in paper_pdf.chunks:
            assert HEADER not in chunk.text
            assert not any(line.strip().isdigit() for line in chunk.text.splitlines())

    def test_hyphenated_line_break_is_joined(self, paper_pdf: ParsedDocument) -> None:
        abstract = by_section(paper_pdf)["Abstract"]
        assert "the information stored" in abstract.text
        assert "infor-" not in abstract.text

    def test_paragraphs_are_kept_apart(self, paper_pdf: ParsedDocument) -> None:
        introduction = by_section(paper_pdf)["1 Introduction"].text
        assert "programming.\n\nMenabrea described" in introduction

    def test_long_sections_split_at_paragraphs_with_their_pages(self, tmp_path: Path) -> None:
        # Paragraphs of three lines, the last one short, as a typeset paragraph ends.
        body = [(10, line) for _ in range(12) for line in textwrap.wrap(FILLER, 80)]
        start = [(18, TITLE), (12, "Abstract"), (10, "A short abstract."), (12, "1 Introduction")]
        pages = [start + body, body]
        document = read_paper("long.pdf", write_pdf(tmp_path / "long.pdf", pages))
        chunks = [c for c in document.chunks if c.section == "1 Introduction"]
        assert len(chunks) > 2
        assert all(len(c.text) <= MAX_CHARS for c in chunks)
        assert {c.page for c in chunks} == {1, 2}
        for chunk in chunks:  # whole sentences: no paragraph was cut in the middle
            assert chunk.text.rstrip().endswith("turn.")
        assert sum(c.text.count("The engine reads") for c in chunks) == 24

    def test_document_info_fills_in_title_and_authors(self, tmp_path: Path) -> None:
        pages = [[(10, line) for _, line in PAGES[1]] + [(10, "References"), (10, "[1] A. B.")]]
        data = write_pdf(
            tmp_path / "plain.pdf", pages, title="Engines", author="Ada Lovelace; Grace Hopper"
        )
        meta = read_paper("plain.pdf", data).meta
        assert meta["title"] == "Engines"
        assert meta["authors"] == ["Ada Lovelace", "Grace Hopper"]

    def test_empty_user_password_is_read(self, tmp_path: Path) -> None:
        encrypt = StandardEncryption("", ownerPassword="owner", canModify=0)
        data = write_pdf(tmp_path / "open.pdf", PAGES, encrypt=encrypt)
        assert read_paper("open.pdf", data).meta["title"] == TITLE


# Body text that a reader of line shapes took for headings: a numbered step after a finished
# sentence ("2 Colonies were counted ...") follows "1 Introduction" like section 2 would.
NUMBERED_STEPS = [
    "We counted the plates in two steps.",
    "1 Plates were read after one day.",
    "2 Colonies were counted after two days of",
    "incubation at room temperature.",
]


def outline_pdf(path: Path) -> bytes:
    """Headings in the body's own type, found only through the outline, which names them
    without their numbers ("Methods" for "2 Methods")."""
    pdf = canvas.Canvas(str(path), pagesize=letter)
    height = letter[1]
    pages = [
        [TITLE, "Abstract", "We revisit the engine.", "1 Introduction", *NUMBERED_STEPS],
        ["The counts agreed.", "2 Methods", "We simulated the engine.", "2.1 The Mill"],
        ["The mill adds.", "References", "[1] C. Babbage. On the engine. 1837."],
    ]
    outline = {"Abstract": 0, "1 Introduction": 0, "2 Methods": 0, "2.1 The Mill": 1}
    for number, lines in enumerate(pages, start=1):
        y = height - 72
        for text in lines:
            y -= 14
            pdf.setFont("Helvetica", 10)
            pdf.drawString(72, y, text)
            if text in outline:
                key = f"h{number}-{y}"
                pdf.bookmarkHorizontalAbsolute(key, y + 10)
                title = text.split(" ", 1)[1] if text[0].isdigit() else text
                pdf.addOutlineEntry(title, key, level=outline[text])
        pdf.showPage()
    pdf.save()
    return path.read_bytes()


class TestPdfHeadings:
    def test_headings_come_from_the_outline(self, tmp_path: Path) -> None:
        document = read_paper("steps.pdf", outline_pdf(tmp_path / "steps.pdf"))
        sections = [(c.section, c.page, c.heading) for c in document.chunks]
        assert sections == [
            ("Abstract", 1, ""),
            ("1 Introduction", 1, ""),
            ("2 Methods", 2, ""),
            ("2.1 The Mill", 2, "2 Methods"),
        ]
        introduction = by_section(document)["1 Introduction"].text
        assert "2 Colonies were counted after two days of incubation" in introduction
        assert "The counts agreed." in introduction  # page 2, before the next heading
        assert document.meta["references"] == 1
        assert document.meta["abstract"] == "We revisit the engine."

    def test_headings_come_from_the_type(self, tmp_path: Path) -> None:
        pages = [
            [(18, TITLE), (12, "Abstract"), (10, "We revisit the engine.")]
            + [(12, "1 Introduction")]
            + [(10, line) for line in NUMBERED_STEPS],
            [(12, "2 Methods"), (10, "We simulated the engine.")],
        ]
        data = write_pdf(tmp_path / "steps.pdf", pages, header="")
        document = read_paper("steps.pdf", data)
        assert [(c.section, c.page) for c in document.chunks] == [
            ("Abstract", 1),
            ("1 Introduction", 1),
            ("2 Methods", 2),
        ]
        assert by_section(document)["1 Introduction"].text.endswith(
            "2 Colonies were counted after two days of incubation at room temperature."
        )

    def test_a_long_heading_wrapped_in_its_type_is_one_heading(self, tmp_path: Path) -> None:
        body = [(10, line) for line in textwrap.wrap(FILLER, 80)]
        pages = [
            [
                (18, TITLE),
                (12, "1 Introduction"),
                *body,
                (12, "2 What the Notes on the Analytical Engine Tell"),
                (12, "Us About Programming"),
                *body,
            ],
        ]
        document = read_paper("wrapped.pdf", write_pdf(tmp_path / "wrapped.pdf", pages))
        assert [c.section for c in document.chunks] == [
            "1 Introduction",
            "2 What the Notes on the Analytical Engine Tell Us About Programming",
        ]

    def test_without_outline_or_distinct_type_there_are_no_sections(self, tmp_path: Path) -> None:
        # Paragraphs enough for a chunk of their own on each page.
        body = [(10, line) for _ in range(8) for line in textwrap.wrap(FILLER, 80)]
        pages = [
            [(10, "1 Introduction"), *[(10, line) for line in NUMBERED_STEPS], *body],
            [(10, "2 Methods"), (10, "We simulated the engine."), *body],
        ]
        document = read_paper("flat.pdf", write_pdf(tmp_path / "flat.pdf", pages, header=""))
        assert {c.section for c in document.chunks} == {""}
        assert [c.page for c in document.chunks] == [1, 1, 2]
        assert document.chunks[-1].locator == {"path": "flat.pdf", "page": 2}


class TestPdfRejected:
    def test_password_protected(self, tmp_path: Path) -> None:
        encrypt = StandardEncryption("secret", ownerPassword="owner")
        data = write_pdf(tmp_path / "locked.pdf", PAGES, encrypt=encrypt)
        with pytest.raises(FileRejected, match=r"^encrypted PDF: .*password"):
            read_paper("locked.pdf", data)

    def test_no_text_layer(self, tmp_path: Path) -> None:
        path = tmp_path / "scan.pdf"
        pdf = canvas.Canvas(str(path), pagesize=letter)
        pdf.rect(72, 300, 300, 200, fill=1)
        pdf.circle(300, 600, 80)
        pdf.line(72, 100, 500, 120)
        pdf.showPage()
        pdf.save()
        with pytest.raises(FileRejected, match=r"no text layer \(scanned"):
            read_paper("scan.pdf", path.read_bytes())
        with pytest.raises(FileRejected, match="no text layer"):
            extract_pdf_text(path.read_bytes())

    @pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
    def test_corrupt(self, tmp_path: Path, damage: str) -> None:
        data = write_pdf(tmp_path / "engines.pdf", PAGES)
        broken = {
            "truncated": data[: len(data) // 2],
            "garbage": b"%PDF-1.7\n" + b"\x8f garbage " * 200,
            "empty": b"",
        }[damage]
        with pytest.raises(FileRejected, match=r"^corrupt PDF: "):
            read_paper("broken.pdf", broken)


class TestLatex:
    SOURCE = (PAPERS / "engines.tex").read_text()

    @pytest.fixture
    def document(self) -> ParsedDocument:
        return read_paper("papers/engines.tex", self.SOURCE.encode())

    def test_metadata(self, document: ParsedDocument) -> None:
        meta = document.meta
        assert meta["title"] == TITLE
        assert meta["authors"] == ["Ada Lovelace", "Grace Hopper"]
        assert meta["orcids"] == [ORCID]
        assert meta["doi"] == "10.5555/vouch.2026.42"
        assert meta["abstract"].startswith("We revisit the Analytical Engine and its programs. Our")
        assert meta["references"] == 3

    def test_sections_are_numbered_as_latex_numbers_them_with_exact_lines(
        self, document: ParsedDocument
    ) -> None:
        spans = [(c.section, c.heading, c.line_start, c.line_end) for c in document.chunks]
        assert spans == [
            ("Abstract", "", 12, 13),
            ("1 Introduction", "", 16, 21),
            ("2 Methods", "", 23, 27),
            ("3 Results", "", 29, 31),
            ("3.1 Setup", "3 Results", 33, 34),
            ("3.2 Error Analysis", "3 Results", 36, 37),
            ("Acknowledgements", "", 39, 40),
        ]
        assert all(c.page == 0 for c in document.chunks)
        assert document.chunks[4].locator == {
            "path": "papers/engines.tex",
            "section": "3.1 Setup",
            "lines": [33, 34],
        }

    def test_commands_are_stripped_and_math_kept(self, document: ParsedDocument) -> None:
        introduction, methods = document.chunks[1].text, document.chunks[2].text
        assert introduction == (
            "1 Introduction\n\n"
            "Babbage designed the Engine in 1837 [cite].\n"
            "It was never built, as Section [ref] explains.\n\n"
            "A second paragraph, with 50% of the text."
        )
        assert "$e = |x - \\hat{x}|$" in methods
        assert "\\begin{equation}\n  e_{\\max} = \\max_i e_i\n\\end{equation}" in methods

    def test_bibliography_is_left_out(self, document: ParsedDocument) -> None:
        text = "\n".join(chunk.text for chunk in document.chunks)
        assert "Menabrea" not in text
        assert "bibitem" not in text
        assert "a comment" not in text

    def test_appendix_and_starred_sections(self) -> None:
        source = (
            "\\begin{document}\n"
            "\\section{Intro}\nText one.\n"
            "\\section*{Notation}\nText two.\n"
            "\\appendix\n\\section{Proofs}\nText three.\n"
            "\\subsection{Lemma}\nText four.\n"
            "\\bibliography{refs}\n"
            "\\end{document}\n"
        )
        document = read_paper("a.tex", source.encode())
        assert [c.section for c in document.chunks] == [
            "1 Intro",
            "Notation",
            "A Proofs",
            "A.1 Lemma",
        ]
        assert "references" not in document.meta  # \bibliography{refs}: entries not countable

    def test_latin1_source_is_decoded(self) -> None:
        source = "\\title{Caf\\'e}\n\\begin{document}\n\\section{R\u00e9sum\u00e9}\nCaf\u00e9.\n"
        document = read_paper("a.tex", source.encode("latin-1"))
        assert document.meta["title"] == "Café"
        assert document.chunks[0].section == "1 Résumé"


class TestMarkdown:
    SOURCE = (PAPERS / "engines.md").read_text()

    @pytest.fixture
    def document(self) -> ParsedDocument:
        return read_paper("papers/engines.md", self.SOURCE.encode())

    def test_metadata(self, document: ParsedDocument) -> None:
        assert document.meta == {
            "title": TITLE,
            "authors": ["Ada Lovelace", "Grace Hopper"],
            "doi": "10.5555/vouch.2026.42",
            "orcids": [ORCID],
            "abstract": "We revisit the Analytical Engine and its programs.",
            "references": 3,
        }

    def test_sections_with_exact_lines(self, document: ParsedDocument) -> None:
        spans = [(c.section, c.heading, c.line_start, c.line_end) for c in document.chunks]
        assert spans == [
            ("Abstract", "", 7, 9),
            ("1 Introduction", "", 11, 15),
            ("2 Methods", "", 17, 19),
            ("3 Results", "", 21, 23),
            ("3.1 Setup", "3 Results", 25, 27),
            ("3.2 Error Analysis", "3 Results", 29, 31),
        ]
        lines = self.SOURCE.splitlines()
        for chunk in document.chunks:
            assert chunk.text == "\n".join(lines[chunk.line_start - 1 : chunk.line_end])
        assert document.chunks[5].embed_text.startswith(f"{TITLE}\n3 Results > 3.2 Error Analysis")

    def test_references_are_left_out(self, document: ParsedDocument) -> None:
        assert not any("Menabrea" in chunk.text for chunk in document.chunks)

    def test_yaml_front_matter(self) -> None:
        source = (
            "---\n"
            'title: "Engines, Revisited"\n'
            "author:\n"
            "  - name: Ada Lovelace\n"
            "    affiliation: Analytical Engine Institute\n"
            "  - name: Grace Hopper\n"
            "abstract: >\n"
            "  We revisit engines\n"
            "  and their programs.\n"
            "---\n"
            "\n"
            "# Introduction\n"
            "\n"
            "Text.\n"
            "\n"
            "# References\n"
            "\n"
            "- Menabrea. Sketch. doi:10.1000/cited.1\n"
        )
        document = read_paper("c.md", source.encode())
        assert document.meta == {
            "title": "Engines, Revisited",
            "authors": ["Ada Lovelace", "Grace Hopper"],
            "abstract": "We revisit engines and their programs.",
            "references": 1,
        }  # the DOI of a cited work is not the paper's
        assert [(c.section, c.line_start, c.line_end) for c in document.chunks] == [
            ("Introduction", 12, 14)
        ]

    def test_run_in_abstract_and_long_section(self) -> None:
        paragraphs = "\n\n".join(f"Paragraph {i}. " + FILLER * 2 for i in range(10))
        source = (
            "# A Title\n\nAda Lovelace\n\n**Abstract.** We study engines.\n\n"
            f"## Methods\n\n{paragraphs}\n"
        )
        document = read_paper("b.md", source.encode())
        assert document.meta["abstract"] == "We study engines."
        assert document.chunks[0].section == "Abstract"
        assert (document.chunks[0].line_start, document.chunks[0].line_end) == (5, 5)
        methods = [c for c in document.chunks if c.section == "Methods"]
        assert len(methods) > 2
        assert all(len(c.text) <= MAX_CHARS for c in methods)
        lines = source.splitlines()
        for chunk in methods:
            assert chunk.text == "\n".join(lines[chunk.line_start - 1 : chunk.line_end])


def test_plain_text_paper_finds_headings_by_shape() -> None:
    source = (
        "Analytical Engines Revisited\n"
        "Ada Lovelace, Grace Hopper\n"
        "\n"
        "Abstract\n"
        "We revisit the engine.\n"
        "\n"
        "1. Introduction\n"
        "Babbage designed it.\n"
        "\n"
        "2. Related Work\n"
        "Menabrea described it.\n"
        "\n"
        "Bibliography\n"
        "Babbage, C. On the engine. 1837.\n"
        "Menabrea, L. F. Sketch of the engine.\n"
        "1842.\n"
    )
    document = read_paper("engines.txt", source.encode())
    assert document.meta["title"] == TITLE
    assert document.meta["authors"] == ["Ada Lovelace", "Grace Hopper"]
    assert document.meta["references"] == 2
    spans = [(c.section, c.line_start, c.line_end) for c in document.chunks]
    assert spans == [("Abstract", 4, 5), ("1. Introduction", 7, 8), ("2. Related Work", 10, 11)]


def test_numbered_table_rows_are_not_headings() -> None:
    source = (
        "1 Introduction\nThe cache file starts with a header.\n\n"
        "2 Cache Layout\nThe header holds these fields:\n"
        "4 CARD32 OFFSET\n4 CARD32 LENGTH\n4 CARD32 FLAGS\n\n"
        "3 Results\nReading it is fast.\n"
    )
    document = read_paper("cache.txt", source.encode())
    assert [c.section for c in document.chunks] == ["1 Introduction", "2 Cache Layout", "3 Results"]
    assert "4 CARD32 FLAGS" in document.chunks[1].text


def test_unsupported_suffix_is_rejected() -> None:
    with pytest.raises(FileRejected, match=r"not a paper format \(\.docx\)"):
        read_paper("paper.docx", b"PK\x03\x04")


def test_orcid_checksum() -> None:
    assert orcid_valid(ORCID)
    assert orcid_valid("0000-0002-9079-593X")
    assert not orcid_valid("0000-0002-1825-0098")
    text = "ORCID 0000-0002-1825-0098 and 0000-0002-9079-593X"
    document = read_paper("a.md", f"# A Title\n\n{text}\n\n## Methods\n\nText.\n".encode())
    assert document.meta["orcids"] == ["0000-0002-9079-593X"]


class TestLooksLikePaper:
    def test_papers(self, tmp_path: Path) -> None:
        assert looks_like_paper((PAPERS / "engines.md").read_text())
        assert looks_like_paper((PAPERS / "engines.tex").read_text())
        assert looks_like_paper(extract_pdf_text(write_pdf(tmp_path / "p.pdf", PAGES)))

    def test_identifiers_alone(self) -> None:
        assert looks_like_paper("Engines\n\nPreprint arXiv:2101.01234v2 [cs.LG]\n\nSome text.")
        assert looks_like_paper("Engines\n\nhttps://doi.org/10.1000/xyz123\n\nSome text.")

    def test_readme(self) -> None:
        readme = (
            "# enginesim\n\n[![CI](https://example.org/badge.svg)](https://example.org)\n\n"
            "A simulator of the Analytical Engine.\n\n## Installation\n\n```bash\n"
            "pip install enginesim\n```\n\n## Usage\n\nRun `enginesim cards.txt`.\n\n"
            "## References\n\n- Menabrea, Sketch of the Analytical Engine, 1842.\n\n"
            "Cite as: DOI 10.5281/zenodo.1234567\n"
        )
        assert not looks_like_paper(readme)

    def test_regulation(self) -> None:
        regulation = (
            "REGULATION (EU) 2026/1 OF THE EUROPEAN PARLIAMENT AND OF THE COUNCIL\n\n"
            "on engines\n\nWhereas:\n\n(1) Engines should be safe.\n\n"
            "HAVE ADOPTED THIS REGULATION:\n\nArticle 1\nSubject matter\n\n"
            "This Regulation lays down rules on engines.\n\nArticle 2\nDefinitions\n\n"
            "For the purposes of this Regulation, 'engine' means a calculating machine.\n\n"
            "References to Directive 2001/1 shall be construed as references to this Regulation.\n"
        )
        assert not looks_like_paper(regulation)


FRAGMENTS = st.sampled_from(
    [
        "\\section{A}", "\\subsection*{B}", "\\begin{abstract}", "\\end{abstract}", "{", "}",
        "$", "%", "\\\\", "\\begin{thebibliography}{9}", "\\bibitem{x}", "\\end{thebibliography}",
        "\\textbf{", "\\footnote{", "\\def\\a{\\a\\a}", "\\a", "\\begin{document}",
        "\\end{document}", "\\begin{equation}", "\\end{equation}", "\\item", "\\'", "\\verb|",
        "\\appendix", "\\title{", "\\author{A B \\and C D}", "\n", "\n\n", "\r\n", "\f", "word ",
        "Abstract", "# Title", "## 1 Intro", "### 1.1 Sub", "References", "1 Introduction",
        "2. Methods", "```", "---", "[1] A ref.", "- item", "infor-", "**Abstract.** ",
        "10.1234/x", "0000-0002-1825-0097",
    ]
)  # fmt: skip
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=4)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(FRAGMENTS | TEXT, max_size=60), st.sampled_from([".tex", ".md", ".txt"]))
def test_any_text_is_read_with_line_spans_inside_the_file(pieces: list[str], suffix: str) -> None:
    source = "".join(pieces)
    document = read_paper(f"paper{suffix}", source.encode())
    lines = re.split(r"\r\n|\r|\n", source)
    count = len(lines) - (lines[-1] == "")
    for chunk in document.chunks:
        assert chunk.text.strip()
        assert chunk.kind == "paper"
        assert 1 <= chunk.line_start <= chunk.line_end <= count
