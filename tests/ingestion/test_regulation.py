"""Regulations: citation paths, headings and parents, whole paragraphs, definitions, references.

The GDPR excerpt (tests/data/regulation) is the same text as Formex XML, EUR-Lex-style HTML,
Markdown and plain text; every format must give the same chunks. EU legislation is reusable
(Commission Decision 2011/833/EU); the CFR excerpt is a work of the US government. The widget
rulebook, in the UK/ADGM/DFSA style ("1.1.2" rules and "Guidance" notes), is invented for
these tests.
"""

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from ingestion.errors import FileRejected
from ingestion.sources.base import Chunk, ParsedDocument
from ingestion.sources.regulation import looks_like_regulation, read_regulation

DATA = Path(__file__).parents[1] / "data" / "regulation"
GDPR_FILES = ["gdpr_excerpt.xml", "gdpr_excerpt.html", "gdpr_excerpt.md", "gdpr_excerpt.txt"]

ERASURE = "Right to erasure (\u2018right to be forgotten\u2019)"
CHAPTER_III = "Chapter III Rights of the data subject > Section 3 Rectification and erasure"
ARTICLE_SECTIONS = [
    "Art. 4",
    "Art. 4(1)",
    "Art. 4(2)",
    "Art. 4(7)",
    "Art. 4(11)",
    "Art. 6(1)",
    "Art. 6(2)",
    "Art. 9(1)",
    "Art. 9(2)",
    *[f"Art. 9(2)({point})" for point in "abcdefghij"],
    "Art. 16",
    "Art. 17(1)",
    "Art. 17(2)",
    "Art. 17(3)",
]
# Whole paragraphs (and one whole point) as they must appear, each in exactly one chunk.
WHOLE = {
    "Art. 16": (
        "The data subject shall have the right to obtain from the controller without undue delay "
        "the rectification of inaccurate personal data concerning him or her. Taking into account "
        "the purposes of the processing, the data subject shall have the right to have incomplete "
        "personal data completed, including by means of providing a supplementary statement."
    ),
    "Art. 17(1)": (
        "1. The data subject shall have the right to obtain from the controller the erasure of "
        "personal data concerning him or her without undue delay and the controller shall have "
        "the obligation to erase personal data without undue delay where one of the following "
        "grounds applies: (a) the personal data are no longer necessary in relation to the "
        "purposes for which they were collected or otherwise processed; (b) the data subject "
        "withdraws consent on which the processing is based according to point (a) of Article "
        "6(1), or point (a) of Article 9(2), and where there is no other legal ground for the "
        "processing; (c) the data subject objects to the processing pursuant to Article 21(1) and "
        "there are no overriding legitimate grounds for the processing, or the data subject "
        "objects to the processing pursuant to Article 21(2); (d) the personal data have been "
        "unlawfully processed; (e) the personal data have to be erased for compliance with a "
        "legal obligation in Union or Member State law to which the controller is subject; (f) "
        "the personal data have been collected in relation to the offer of information society "
        "services referred to in Article 8(1)."
    ),
    "Art. 17(3)": (
        "3. Paragraphs 1 and 2 shall not apply to the extent that processing is necessary: (a) for "
        "exercising the right of freedom of expression and information; (b) for compliance with "
        "a legal obligation which requires processing by Union or Member State law to which the "
        "controller is subject or for the performance of a task carried out in the public "
        "interest or in the exercise of official authority vested in the controller; (c) for "
        "reasons of public interest in the area of public health in accordance with points (h) "
        "and (i) of Article 9(2) as well as Article 9(3); (d) for archiving purposes in the "
        "public interest, scientific or historical research purposes or statistical purposes in "
        "accordance with Article 89(1) in so far as the right referred to in paragraph 1 is "
        "likely to render impossible or seriously impair the achievement of the objectives of "
        "that processing; or (e) for the establishment, exercise or defence of legal claims."
    ),
    "Art. 6(1)": (
        "1. Processing shall be lawful only if and to the extent that at least one of the "
        "following applies: (a) the data subject has given consent to the processing of his or "
        "her personal data for one or more specific purposes; (b) processing is necessary for "
        "the performance of a contract to which the data subject is party or in order to take "
        "steps at the request of the data subject prior to entering into a contract; (c) "
        "processing is necessary for compliance with a legal obligation to which the controller "
        "is subject; (d) processing is necessary in order to protect the vital interests of the "
        "data subject or of another natural person; (e) processing is necessary for the "
        "performance of a task carried out in the public interest or in the exercise of official "
        "authority vested in the controller; (f) processing is necessary for the purposes of the "
        "legitimate interests pursued by the controller or by a third party, except where such "
        "interests are overridden by the interests or fundamental rights and freedoms of the "
        "data subject which require protection of personal data, in particular where the data "
        "subject is a child. Point (f) of the first subparagraph shall not apply to processing "
        "carried out by public authorities in the performance of their tasks."
    ),
    "Art. 9(2)(d)": (
        "(d) processing is carried out in the course of its legitimate activities with "
        "appropriate safeguards by a foundation, association or any other not-for-profit body "
        "with a political, philosophical, religious or trade union aim and on condition that the "
        "processing relates solely to the members or to former members of the body or to persons "
        "who have regular contact with it in connection with its purposes and that the personal "
        "data are not disclosed outside that body without the consent of the data subjects;"
    ),
}
DEFINITIONS = {
    "personal data": "Art. 4(1)",
    "data subject": "Art. 4(1)",
    "processing": "Art. 4(2)",
    "controller": "Art. 4(7)",
    "consent": "Art. 4(11)",
}


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _read(name: str, **options: int) -> ParsedDocument:
    return read_regulation(name, (DATA / name).read_bytes(), **options)


def _by_section(parsed: ParsedDocument) -> dict[str, Chunk]:
    """The first chunk of each section (text outside articles may share one, as "Preamble")."""
    chunks: dict[str, Chunk] = {}
    for chunk in parsed.chunks:
        chunks.setdefault(chunk.section, chunk)
    return chunks


def _articles(parsed: ParsedDocument) -> list[Chunk]:
    return [chunk for chunk in parsed.chunks if chunk.section.startswith("Art.")]


def _lines_match(source: str, chunks: list[Chunk]) -> None:
    lines = source.splitlines()
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.line_start - 1 : chunk.line_end])


class TestGdprInEveryFormat:
    @pytest.mark.parametrize("name", GDPR_FILES)
    def test_one_chunk_per_paragraph_with_its_citation_path(self, name: str) -> None:
        parsed = _read(name)
        assert parsed.kind == "regulation"
        assert [chunk.section for chunk in _articles(parsed)] == ARTICLE_SECTIONS
        assert all(chunk.kind == "regulation" for chunk in parsed.chunks)

    @pytest.mark.parametrize("name", GDPR_FILES)
    def test_headings_and_parents(self, name: str) -> None:
        chunks = _by_section(_read(name))
        assert chunks["Art. 17(3)"].heading == ERASURE
        assert chunks["Art. 17(3)"].extra["parents"] == CHAPTER_III
        assert chunks["Art. 16"].heading == "Right to rectification"
        assert chunks["Art. 16"].extra["parents"] == CHAPTER_III
        assert chunks["Art. 6(1)"].heading == "Lawfulness of processing"
        assert chunks["Art. 6(1)"].extra["parents"] == "Chapter II Principles"
        assert chunks["Art. 4(7)"].heading == "Definitions"
        assert chunks["Art. 4(7)"].extra["parents"] == "Chapter I General provisions"

    @pytest.mark.parametrize("name", GDPR_FILES)
    def test_no_paragraph_is_cut(self, name: str) -> None:
        chunks = _read(name).chunks
        for section, text in WHOLE.items():
            holding = [chunk for chunk in chunks if text in _flat(chunk.text)]
            assert [chunk.section for chunk in holding] == [section]
            assert _flat(holding[0].text) == text

    @pytest.mark.parametrize("name", GDPR_FILES[1:])
    def test_same_text_as_the_formex_original(self, name: str) -> None:
        formex = {chunk.section: _flat(chunk.text) for chunk in _articles(_read(GDPR_FILES[0]))}
        other = {chunk.section: _flat(chunk.text) for chunk in _articles(_read(name))}
        assert other == formex

    @pytest.mark.parametrize("name", GDPR_FILES)
    def test_definitions_are_collected(self, name: str) -> None:
        parsed = _read(name)
        definitions = parsed.meta["definitions"]
        assert {term: definitions[term] for term in DEFINITIONS} == DEFINITIONS
        chunks = _by_section(parsed)
        assert chunks["Art. 4(1)"].extra["defines"] == "personal data; data subject"
        assert chunks["Art. 4(11)"].extra["defines"] == "consent"
        assert "defines" not in chunks["Art. 17(1)"].extra

    @pytest.mark.parametrize("name", GDPR_FILES)
    def test_cross_references_are_normalised(self, name: str) -> None:
        chunks = _by_section(_read(name))
        assert chunks["Art. 17(1)"].extra["refs"] == (
            "Art. 6(1)(a); Art. 9(2)(a); Art. 21(1); Art. 21(2); Art. 8(1)"
        )
        assert chunks["Art. 17(3)"].extra["refs"] == (
            "Art. 17(1); Art. 17(2); Art. 9(2)(h); Art. 9(2)(i); Art. 9(3); Art. 89(1)"
        )
        assert chunks["Art. 6(2)"].extra["refs"] == "Art. 6(1)(c); Art. 6(1)(e)"
        assert chunks["Art. 6(1)"].extra["refs"] == "Art. 6(1)(f)"
        assert chunks["Art. 9(2)(j)"].extra["refs"] == "Art. 89(1)"
        assert "refs" not in chunks["Art. 16"].extra

    @pytest.mark.parametrize("name", GDPR_FILES)
    def test_a_very_long_paragraph_is_split_between_its_points(self, name: str) -> None:
        chunks = _by_section(_read(name))
        # Article 9(2) is three times the window: its lead-in and each point are chunks.
        assert _flat(chunks["Art. 9(2)"].text) == (
            "2. Paragraph 1 shall not apply if one of the following applies:"
        )
        point = chunks["Art. 9(2)(i)"]
        assert _flat(point.text).startswith("(i) processing is necessary for reasons of public")
        assert point.heading == "Processing of special categories of personal data"
        assert point.extra["parents"] == "Chapter II Principles"
        assert "Paragraph 1 shall not apply if one of the following applies:" in point.context
        # Article 6(1) is a little over the window and stays whole.
        assert len(chunks["Art. 6(1)"].text) > 1200


class TestFormex:
    def test_locator_is_the_citation(self) -> None:
        chunk = _by_section(_read("gdpr_excerpt.xml"))["Art. 17(3)"]
        assert chunk.locator == {
            "path": "gdpr_excerpt.xml",
            "section": "Art. 17(3)",
            "heading": ERASURE,
        }
        assert (chunk.line_start, chunk.line_end, chunk.page) == (0, 0, 0)

    def test_context_names_title_parents_heading_and_path(self) -> None:
        parsed = _read("gdpr_excerpt.xml")
        chunk = _by_section(parsed)["Art. 17(1)"]
        assert parsed.meta["title"].startswith(
            "REGULATION (EU) 2016/679 OF THE EUROPEAN PARLIAMENT AND OF THE COUNCIL of 27 April"
        )
        assert chunk.context.splitlines() == [
            parsed.meta["title"],
            "Chapter III Rights of the data subject",
            "Section 3 Rectification and erasure",
            ERASURE,
            "Art. 17(1)",
        ]
        assert chunk.embed_text == f"{chunk.context}\n{chunk.text}"

    def test_recitals_preamble_and_final_provisions(self) -> None:
        parsed = _read("gdpr_excerpt.xml")
        chunks = _by_section(parsed)
        recital = chunks["Recital 1"]
        assert recital.text.startswith("(1) The protection of natural persons")
        assert recital.extra["refs"] == "Art. 8(1) Charter; Art. 16(1) TFEU"
        assert parsed.meta["definitions"]["Charter"] == "Recital 1"
        assert chunks["Recital 2"].text.startswith("(2) The principles of")
        assert chunks["Final provisions"].text == (
            "This Regulation shall be binding in its entirety and directly applicable in all "
            "Member States."
        )
        assert [c.section for c in parsed.chunks].index("Recital 2") < [
            c.section for c in parsed.chunks
        ].index("Art. 4")

    def test_a_smaller_window_splits_at_points_with_deeper_paths(self) -> None:
        chunks = _by_section(_read("gdpr_excerpt.xml", max_chars=400))
        assert [s for s in chunks if s.startswith("Art. 17")] == [
            "Art. 17(1)",
            *[f"Art. 17(1)({point})" for point in "abcdef"],
            "Art. 17(2)",
            "Art. 17(3)",
            *[f"Art. 17(3)({point})" for point in "abcde"],
        ]
        point = chunks["Art. 17(3)(b)"]
        assert point.text == (
            "(b) for compliance with a legal obligation which requires processing by Union or "
            "Member State law to which the controller is subject or for the performance of a task "
            "carried out in the public interest or in the exercise of official authority vested in "
            "the controller;"
        )
        assert point.heading == ERASURE
        assert point.extra["parents"] == CHAPTER_III
        assert point.locator["section"] == "Art. 17(3)(b)"
        assert chunks["Art. 17(3)"].text == (
            "3. Paragraphs 1 and 2 shall not apply to the extent that processing is necessary:"
        )
        assert chunks["Art. 17(1)(b)"].extra["refs"] == "Art. 6(1)(a); Art. 9(2)(a)"
        # The same split, read from the Markdown, spans exactly the point's line.
        markdown = _by_section(_read("gdpr_excerpt.md", max_chars=400))["Art. 17(3)(b)"]
        assert (markdown.line_start, markdown.line_end) == (106, 106)
        assert _flat(markdown.text) == point.text


class TestLineSources:
    def test_markdown_line_spans_are_exact(self) -> None:
        source = (DATA / "gdpr_excerpt.md").read_text(encoding="utf-8")
        parsed = _read("gdpr_excerpt.md")
        spans = {c.section: (c.line_start, c.line_end) for c in parsed.chunks}
        assert spans["Preamble"] == (3, 3)
        assert spans["Art. 4"] == (13, 13)
        assert spans["Art. 4(11)"] == (21, 21)
        assert spans["Art. 6(1)"] == (31, 45)
        assert spans["Art. 9(2)(a)"] == (57, 57)
        assert spans["Art. 9(2)(j)"] == (66, 66)
        assert spans["Art. 16"] == (78, 80)
        assert spans["Art. 17(1)"] == (86, 98)
        assert spans["Art. 17(3)"] == (102, 112)
        _lines_match(source, parsed.chunks)
        assert parsed.meta["title"] == (
            "Regulation (EU) 2016/679 (General Data Protection Regulation), excerpt"
        )
        assert _by_section(parsed)["Art. 16"].locator == {
            "path": "gdpr_excerpt.md",
            "section": "Art. 16",
            "heading": "Right to rectification",
            "lines": [78, 80],
        }

    def test_text_line_spans_are_exact(self) -> None:
        source = (DATA / "gdpr_excerpt.txt").read_text(encoding="utf-8")
        parsed = _read("gdpr_excerpt.txt")
        spans = {c.section: (c.line_start, c.line_end) for c in parsed.chunks}
        assert spans["Recital 1"] == (11, 16)
        assert spans["Art. 4(1)"] == (35, 41)
        assert spans["Art. 6(1)"] == (67, 87)
        assert spans["Art. 9(2)"] == (106, 106)
        assert spans["Art. 9(2)(i)"] == (142, 147)
        assert spans["Art. 17(3)"] == (205, 218)
        _lines_match(source, parsed.chunks)
        assert parsed.meta["title"].endswith("(General Data Protection Regulation)")

    def test_wrapped_lines_do_not_open_points_or_chapters(self) -> None:
        source = (
            "Article 1\n"
            "Subject-matter\n"
            "1. This Regulation applies to the processing referred to in point\n"
            "(a) of Article 9(2) and to the situations listed in\n"
            "Chapter IX. It also applies to the following:\n"
            "(a) archives;\n"
            "(b) statistics.\n"
            "2. Member States may keep their rules.\n"
        )
        parsed = read_regulation("rules.txt", source.encode())
        assert [(c.section, c.line_start, c.line_end) for c in parsed.chunks] == [
            ("Art. 1(1)", 3, 7),
            ("Art. 1(2)", 8, 8),
        ]
        assert parsed.chunks[0].heading == "Subject-matter"
        assert parsed.chunks[0].extra["refs"] == "Art. 9(2)(a)"

    def test_us_sections_in_plain_text(self) -> None:
        source = (
            "PART 164 - SECURITY AND PRIVACY\n"
            "\n"
            "§ 164.510 Uses and disclosures requiring an opportunity to agree or to object.\n"
            "\n"
            "(a) Standard: Use and disclosure for facility directories.\n"
            "(1) Permitted uses and disclosure. A covered health care provider may:\n"
            "(i) Use the following protected health information; and\n"
            "(ii) Use or disclose for directory purposes such information.\n"
            "(b) Standard: Uses and disclosures for involvement in the individual's care.\n"
            "See paragraph (a)(1) of this section and § 164.512(b).\n"
        )
        parsed = read_regulation("cfr.txt", source.encode())
        chunks = _by_section(parsed)
        assert list(chunks) == ["§ 164.510(a)", "§ 164.510(b)"]
        assert chunks["§ 164.510(a)"].heading == (
            "Uses and disclosures requiring an opportunity to agree or to object."
        )
        assert chunks["§ 164.510(a)"].extra["parents"] == "Part 164 SECURITY AND PRIVACY"
        assert (chunks["§ 164.510(a)"].line_start, chunks["§ 164.510(a)"].line_end) == (5, 8)
        assert chunks["§ 164.510(b)"].extra["refs"] == "§ 164.510(a)(1); § 164.512(b)"

    def test_text_without_legal_structure_falls_back_to_headings(self) -> None:
        source = "# Widgets\n\nIntro.\n\n## Install\n\nRun the installer.\n"
        parsed = read_regulation("README.md", source.encode())
        assert [(c.section, c.text, c.line_start) for c in parsed.chunks] == [
            ("Widgets", "Intro.", 3),
            ("Widgets > Install", "Run the installer.", 7),
        ]
        assert all(c.kind == "regulation" for c in parsed.chunks)

    def test_other_encodings_are_decoded(self) -> None:
        text = "Article 1\nScope\n1. Caf\u00e9 rules \u2018apply\u2019 here.\n"
        for data in (text.encode("utf-16"), b"\xef\xbb\xbf" + text.encode()):
            chunk = read_regulation("a.txt", data).chunks[0]
            assert (chunk.section, chunk.text) == (
                "Art. 1(1)",
                "1. Caf\u00e9 rules \u2018apply\u2019 here.",
            )


class TestDefinitionsAndReferences:
    SOURCE = (
        "# Data Act (excerpt)\n"
        "\n"
        "**Article 2**\n"
        "\n"
        "*Definitions*\n"
        "\n"
        "For the purposes of this Regulation, connected product means an item that obtains "
        'data. "Data holder" means a person with the right to use data. The term '
        "\u2018user\u2019 shall mean a person who owns a connected product.\n"
        "\n"
        "**Article 3**\n"
        "\n"
        "*Obligations*\n"
        "\n"
        "1. Articles 13 and 14 and Articles 15 to 17 apply, as does Article 5 of Directive "
        "95/46/EC, but not Article 3 of that Directive nor Article 16 TFEU.\n"
        "\n"
        "2. Points (a) to (c) of paragraph 1 of Article 4 apply; so do paragraphs 1 and 2 of "
        "Article 9 and point (b).\n"
    )

    def test_definition_forms(self) -> None:
        parsed = read_regulation("data-act.md", self.SOURCE.encode())
        assert parsed.meta["definitions"] == {
            "connected product": "Art. 2",
            "Data holder": "Art. 2",
            "user": "Art. 2",
        }
        assert parsed.chunks[0].extra["defines"] == "connected product; Data holder; user"

    def test_references_to_other_acts_and_ranges(self) -> None:
        chunks = _by_section(read_regulation("data-act.md", self.SOURCE.encode()))
        assert chunks["Art. 3(1)"].extra["refs"] == (
            "Art. 13; Art. 14; Art. 15; Art. 16; Art. 17; Art. 5 Directive 95/46/EC; Art. 16 TFEU"
        )
        assert chunks["Art. 3(2)"].extra["refs"] == (
            "Art. 4(1)(a); Art. 4(1)(b); Art. 4(1)(c); Art. 9(1); Art. 9(2); Art. 3(2)(b)"
        )


class TestUslm:
    def test_sections_subsections_and_parents(self) -> None:
        parsed = _read("hipaa_164.xml")
        chunks = _by_section(parsed)
        assert list(chunks) == ["§ 164.501", "§ 164.512", "§ 164.512(a)", "§ 164.512(b)"]
        assert parsed.meta["title"] == "45 CFR Part 164 - Security and Privacy (excerpt)"
        subsection = chunks["§ 164.512(a)"]
        assert subsection.heading == (
            "Uses and disclosures for which an authorization or opportunity to agree or object "
            "is not required."
        )
        assert subsection.extra["parents"] == (
            "Part 164 SECURITY AND PRIVACY > Subpart E Privacy of Individually Identifiable "
            "Health Information"
        )
        assert subsection.text.splitlines()[:2] == [
            "(a) Standard: Uses and disclosures required by law.",
            "(1) A covered entity may use or disclose protected health information to the extent "
            "that such use or disclosure is required by law and the use or disclosure complies "
            "with and is limited to the relevant requirements of such law.",
        ]
        assert subsection.extra["refs"] == "§ 164.512(c); § 164.512(e); § 164.512(f)"
        assert chunks["§ 164.512"].extra["refs"] == "§ 164.508; § 164.510"

    def test_definitions_without_quotes(self) -> None:
        parsed = _read("hipaa_164.xml")
        assert parsed.meta["definitions"] == {
            "Correctional institution": "§ 164.501",
            "Health care operations": "§ 164.501",
        }
        assert _by_section(parsed)["§ 164.501"].extra["defines"] == (
            "Correctional institution; Health care operations"
        )

    def test_long_subsections_split_down_to_subparagraphs(self) -> None:
        parsed = _read("hipaa_164.xml", max_chars=300)
        # A section without subsections is cut between its paragraphs only, under one citation.
        definitions = [c.text for c in parsed.chunks if c.section == "\u00a7 164.501"]
        assert [text.split(" means ")[0] for text in definitions] == [
            "As used in this subpart, the following terms have the following meanings:",
            "Correctional institution",
            "Health care operations",
        ]
        chunks = _by_section(parsed)
        assert [s for s in chunks if s.startswith("§ 164.512(b)")] == [
            "§ 164.512(b)",
            "§ 164.512(b)(1)",
            "§ 164.512(b)(1)(i)",
            "§ 164.512(b)(1)(ii)",
        ]
        assert chunks["§ 164.512(b)(1)(ii)"].text == (
            "(ii) A public health authority or other appropriate government authority authorized "
            "by law to receive reports of child abuse or neglect;"
        )


class TestOtherXml:
    def test_akoma_ntoso(self) -> None:
        source = """<?xml version="1.0" encoding="UTF-8"?>
<akomaNtoso xmlns="http://docs.oasis-open.org/legaldocml/ns/akn/3.0">
  <act name="regulation">
    <meta><identification source="#council"/></meta>
    <preface><p><docTitle>Regulation on widgets</docTitle></p></preface>
    <body>
      <chapter eId="chp_1"><num>CHAPTER 1</num><heading>General</heading>
        <section eId="chp_1__sec_1"><num>SECTION 1</num><heading>Scope</heading>
          <article eId="art_1"><num>Article 1</num><heading>Scope of application</heading>
            <paragraph eId="art_1__para_1"><num>1.</num>
              <content><p>This Regulation applies to widgets.</p></content></paragraph>
            <paragraph eId="art_1__para_2"><num>2.</num>
              <list><intro><p>It does not apply to:</p></intro>
                <point eId="art_1__para_2__point_a"><num>(a)</num>
                  <content><p>gadgets referred to in Article 2;</p></content></point>
                <point eId="art_1__para_2__point_b"><num>(b)</num>
                  <content><p>toys.</p></content></point>
              </list></paragraph>
          </article>
        </section>
      </chapter>
    </body>
  </act>
</akomaNtoso>
"""
        parsed = read_regulation("widgets.xml", source.encode())
        assert parsed.meta["format"] == "akoma-ntoso"
        assert parsed.meta["title"] == "Regulation on widgets"
        chunks = _by_section(parsed)
        assert list(chunks) == ["Art. 1(1)", "Art. 1(2)"]
        assert chunks["Art. 1(2)"].text == (
            "2. It does not apply to:\n(a) gadgets referred to in Article 2;\n(b) toys."
        )
        assert chunks["Art. 1(2)"].heading == "Scope of application"
        assert chunks["Art. 1(2)"].extra["parents"] == "Chapter 1 General > Section 1 Scope"
        assert chunks["Art. 1(2)"].extra["refs"] == "Art. 2"

    def test_any_xml_shaped_like_articles(self) -> None:
        source = (
            "<Rules><Title>Club rules</Title>"
            '<Article number="3"><Heading>Fees</Heading>'
            '<Paragraph number="1">Members pay a fee, which is either:'
            '<Point label="a">monthly; or</Point><Point label="b">yearly.</Point></Paragraph>'
            "</Article></Rules>"
        )
        parsed = read_regulation("club.xml", source.encode())
        assert parsed.meta["title"] == "Club rules"
        assert [(c.section, c.heading, c.text) for c in parsed.chunks] == [
            (
                "Art. 3(1)",
                "Fees",
                "1. Members pay a fee, which is either:\n(a) monthly; or\n(b) yearly.",
            )
        ]

    def test_an_absurdly_long_element_is_cut_between_sentences(self) -> None:
        sentence = "The operator shall keep a register of every widget sold in the Union. "
        source = f"<act><article><num>Article 1</num><p>{sentence * 200}</p></article></act>"
        parsed = read_regulation("long.xml", source.encode())
        assert {c.section for c in parsed.chunks} == {"Art. 1"}
        assert all(len(c.text) <= 1200 for c in parsed.chunks)
        assert all(c.text.endswith("in the Union.") for c in parsed.chunks)
        assert sum(c.text.count("register") for c in parsed.chunks) == 200

    def test_xml_without_articles_is_still_read(self) -> None:
        parsed = read_regulation(
            "memo.xml", b"<memo><p>First point.</p><p>Second point.</p></memo>"
        )
        assert [c.text for c in parsed.chunks] == ["First point.\nSecond point."]

    @pytest.mark.parametrize(
        "source",
        [
            # billion laughs
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            "<lolz>&lol2;</lolz>",
            # external entity
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            "<r><article><num>Article 1</num><p>&xxe;</p></article></r>",
        ],
    )
    def test_entities_are_refused(self, source: str) -> None:
        with pytest.raises(FileRejected, match="unsafe XML refused"):
            read_regulation("evil.xml", source.encode())

    def test_malformed_xml_is_rejected(self) -> None:
        with pytest.raises(FileRejected, match="malformed XML"):
            read_regulation("broken.xml", b"<act><article>")


class TestHtml:
    def test_scripts_styles_and_navigation_are_dropped(self) -> None:
        parsed = _read("gdpr_excerpt.html")
        text = "\n".join(chunk.text for chunk in parsed.chunks)
        assert "Article 99" not in text
        assert "Article 98" not in text
        assert "menu entry" not in text
        assert parsed.meta["title"].startswith("REGULATION (EU) 2016/679")

    def test_generic_html_by_headings(self) -> None:
        source = (
            "<html><head><title>Handbook</title></head><body>"
            "<h1>Staff handbook</h1><p>Welcome.</p>"
            "<h2>Leave</h2><p>Ask first.</p><p>Then go.</p>"
            "</body></html>"
        )
        parsed = read_regulation("handbook.html", source.encode())
        assert [(c.section, c.text) for c in parsed.chunks] == [
            ("Staff handbook", "Welcome."),
            ("Staff handbook > Leave", "Ask first.\nThen go."),
        ]

    def test_head_without_its_end_tag(self) -> None:
        source = "<html><head><title>Rules</title><body><p>Article 1</p><p>Members vote.</p>"
        parsed = read_regulation("rules.html", source.encode())
        assert [(c.section, c.text) for c in parsed.chunks] == [("Art. 1", "Members vote.")]
        assert parsed.meta["title"] == "Rules"

    def test_articles_in_html_headings(self) -> None:
        source = (
            "<h1>Club rules</h1>"
            "<h2>Article 1 - Membership</h2><p>1. Anyone may join.</p><p>2. Members vote.</p>"
            "<h2>Article 2 - Fees</h2><p>Fees are due in January.</p>"
        )
        parsed = read_regulation("club.htm", source.encode())
        assert [(c.section, c.heading, c.text) for c in parsed.chunks] == [
            ("Art. 1(1)", "Membership", "1. Anyone may join."),
            ("Art. 1(2)", "Membership", "2. Members vote."),
            ("Art. 2", "Fees", "Fees are due in January."),
        ]
        assert parsed.meta["title"] == "Club rules"


RULEBOOK = "widget_rulebook.txt"
INTRODUCTION = "1. INTRODUCTION"
GENERAL = "2 GENERAL REQUIREMENTS"


class TestRulebook:
    def test_one_chunk_per_rule_cited_by_its_number(self) -> None:
        source = (DATA / RULEBOOK).read_text(encoding="utf-8")
        parsed = _read(RULEBOOK)
        assert [(c.section, c.line_start, c.line_end) for c in parsed.chunks] == [
            ("Preamble", 1, 1),
            ("1.1.1", 5, 5),
            ("1.1.2", 6, 8),
            ("1.1.2 Guidance 1", 10, 10),
            # Its line 12 starts with "1.1.1 and 1.1.2": a wrapped reference, not a rule.
            ("1.1.2 Guidance 2", 11, 13),
            ("1.2.1", 15, 15),
            ("2.1.1(1)", 20, 20),
            ("2.1.1(2)", 21, 24),
            ("2.1.2", 25, 26),
            ("2.1.2 Guidance", 28, 28),
            ("2.2.1", 30, 30),
            ("2.2.2", 31, 31),
            ("A1.1.1", 35, 35),
        ]
        _lines_match(source, parsed.chunks)
        assert all(chunk.kind == "regulation" for chunk in parsed.chunks)
        assert parsed.meta["title"] == "Widget Exchange Conduct Rules (WXC)"
        assert parsed.meta["units"] == 10

    def test_heading_is_the_section_and_parents_the_chapter(self) -> None:
        chunks = _by_section(_read(RULEBOOK))
        expected = {
            "1.1.1": ("Application", INTRODUCTION),
            "1.1.2 Guidance 2": ("Application", INTRODUCTION),
            "1.2.1": ("Interpretation", INTRODUCTION),
            "2.1.1(2)": ("Systems and controls", GENERAL),
            "2.1.2 Guidance": ("Systems and controls", GENERAL),
            "2.2.2": ("Complaints", GENERAL),
            "A1.1.1": ("Form of records", "APP1 RECORD KEEPING"),
        }
        found = {s: (chunks[s].heading, chunks[s].extra["parents"]) for s in expected}
        assert found == expected
        assert chunks["1.1.2"].locator == {
            "path": RULEBOOK,
            "section": "1.1.2",
            "heading": "Application",
            "lines": [6, 8],
        }
        assert chunks["1.1.2 Guidance 1"].context.splitlines() == [
            "Widget Exchange Conduct Rules (WXC)",
            INTRODUCTION,
            "Application",
            "1.1.2 Guidance 1",
        ]

    def test_points_stay_in_their_rule(self) -> None:
        chunks = _by_section(_read(RULEBOOK))
        assert chunks["1.1.2"].text == (
            "1.1.2 A Widget Exchange must:\n"
            "(a) keep a record of each Widget Order it receives; and\n"
            "(b) make those records available to the Regulator on request."
        )
        # A numbered paragraph after a bare rule number is a chunk, with its points in it.
        assert chunks["2.1.1(2)"].text.splitlines() == [
            "(2) The systems and controls in (1) must include:",
            "(a) a process for halting trading in a widget;",
            "(b) a process for reporting errors to the Regulator; and",
            "(c) a plan for carrying on its business after a disruption.",
        ]
        assert not any(section.startswith("1.1.2(") for section in chunks)

    def test_numbered_items_after_a_lead_in_are_points(self) -> None:
        source = (
            "4.1 Fees\n"
            "4.1.1 A Widget Exchange must pay:\n"
            "(1) an application fee; and\n"
            "(2) an annual fee.\n"
            "4.1.2 The Regulator publishes its fees.\n"
            "4.1.3\n"
            "(1) Fees are due in January.\n"
            "(2) A late fee is doubled.\n"
        )
        parsed = read_regulation("fees.txt", source.encode())
        assert [(c.section, c.line_start, c.line_end) for c in parsed.chunks] == [
            ("4.1.1", 2, 4),
            ("4.1.2", 5, 5),
            ("4.1.3(1)", 7, 7),
            ("4.1.3(2)", 8, 8),
        ]

    def test_a_rule_much_longer_than_the_window_is_split_between_points(self) -> None:
        chunks = _by_section(_read(RULEBOOK, max_chars=80))
        assert [s for s in chunks if s.startswith(("1.1.2", "2.1.1"))] == [
            "1.1.2",
            "1.1.2(a)",
            "1.1.2(b)",
            "1.1.2 Guidance 1",
            "1.1.2 Guidance 2",
            "2.1.1(1)",
            "2.1.1(2)",
            "2.1.1(2)(a)",
            "2.1.1(2)(b)",
            "2.1.1(2)(c)",
        ]
        point = chunks["1.1.2(b)"]
        assert point.text == "(b) make those records available to the Regulator on request."
        assert (point.line_start, point.line_end) == (8, 8)
        assert (point.heading, point.extra["parents"]) == ("Application", INTRODUCTION)
        assert "1.1.2 A Widget Exchange must:" in point.context
        assert chunks["1.1.2"].text == "1.1.2 A Widget Exchange must:"

    def test_definitions_and_references(self) -> None:
        parsed = _read(RULEBOOK)
        assert parsed.meta["definitions"] == {"Widget Order": "1.2.1"}
        chunks = _by_section(parsed)
        assert chunks["1.2.1"].extra["defines"] == "Widget Order"
        assert chunks["1.1.2 Guidance 1"].extra["refs"] == "1.1.2(a)"
        assert chunks["1.1.2 Guidance 2"].extra["refs"] == "1.1.1; 1.1.2"
        assert chunks["A1.1.1"].extra["refs"] == "1.1.2"

    def test_markdown_rulebook(self) -> None:
        source = (
            "# Widget Exchange Conduct Rules\n"
            "\n"
            "## 1. Introduction\n"
            "\n"
            "### 1.1 Application\n"
            "\n"
            "**1.1.1** These Rules apply to every Person who operates a Widget Exchange.\n"
            "\n"
            "**1.1.2** A Widget Exchange must:\n"
            "\n"
            "(a) keep a record of each order; and\n"
            "(b) show the records to the Regulator.\n"
            "\n"
            "**Guidance**\n"
            "\n"
            "1. A record may be kept in electronic form.\n"
        )
        assert looks_like_regulation(source)
        parsed = read_regulation("wxc.md", source.encode())
        assert [(c.section, c.heading, c.line_start, c.line_end) for c in parsed.chunks] == [
            ("1.1.1", "Application", 7, 7),
            ("1.1.2", "Application", 9, 12),
            ("1.1.2 Guidance 1", "Application", 16, 16),
        ]
        assert {c.extra["parents"] for c in parsed.chunks} == {"1. Introduction"}
        _lines_match(source, parsed.chunks)

    def test_html_rulebook(self) -> None:
        source = (
            "<html><head><title>WXC</title></head><body>"
            "<h2>1. INTRODUCTION</h2><h3>1.1 Application</h3>"
            "<p>1.1.1 These Rules apply to every Widget Exchange.</p>"
            "<p>1.1.2 A Widget Exchange must:</p><p>(a) keep records; and</p><p>(b) show them.</p>"
            "<p><b>Guidance</b></p><p>1. Records may be electronic.</p>"
            "<p>1.1.3 A Widget Exchange must pay its fees.</p></body></html>"
        )
        assert looks_like_regulation(source)
        parsed = read_regulation("wxc.html", source.encode())
        assert [(c.section, c.heading, c.text) for c in parsed.chunks] == [
            ("1.1.1", "Application", "1.1.1 These Rules apply to every Widget Exchange."),
            (
                "1.1.2",
                "Application",
                "1.1.2 A Widget Exchange must:\n(a) keep records; and\n(b) show them.",
            ),
            ("1.1.2 Guidance 1", "Application", "1. Records may be electronic."),
            ("1.1.3", "Application", "1.1.3 A Widget Exchange must pay its fees."),
        ]
        assert {c.extra["parents"] for c in parsed.chunks} == {INTRODUCTION}

    def test_numbers_written_in_full(self) -> None:
        # How consolidated exports print each provision with its whole number: the rule's
        # paragraph as "3.1.1.(1)", its guidance notes as "3.1.1.Guidance.1.", the appendix in
        # front of an appendix rule, and a three-level heading above four-level rules.
        source = (
            "3. MARKET CONDUCT\n"
            "3.1 Orders\n"
            "3.1.1\n"
            "3.1.1.(1) A Widget Exchange must record every order it receives.\n"
            "3.1.1.(2) The record must show:\n"
            "(a) the price; and\n"
            "(b) the time.\n"
            "3.1.1.Guidance\n"
            "3.1.1.Guidance.1. A record may be kept in electronic form.\n"
            "3.1.1.Guidance.2. Records are kept for six years.\n"
            "APP2 FEES\n"
            "APP2.A2.1 Annual fees\n"
            "APP2.A2.1.1 Application\n"
            "APP2.A2.1.1.1 A Widget Exchange pays an annual fee.\n"
        )
        parsed = read_regulation("wxc.txt", source.encode())
        rows = [
            (c.section, c.heading, c.extra["parents"], c.line_start, c.line_end)
            for c in parsed.chunks
        ]
        assert rows == [
            ("3.1.1(1)", "Orders", "3. MARKET CONDUCT", 4, 4),
            ("3.1.1(2)", "Orders", "3. MARKET CONDUCT", 5, 7),
            ("3.1.1 Guidance 1", "Orders", "3. MARKET CONDUCT", 9, 9),
            ("3.1.1 Guidance 2", "Orders", "3. MARKET CONDUCT", 10, 10),
            ("APP2.A2.1.1.1", "Application", "APP2 FEES > APP2.A2.1 Annual fees", 14, 14),
        ]
        _lines_match(source, parsed.chunks)
        assert looks_like_regulation(source)


def _pdf(pages: list[list[str]], *, title: str = "") -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    if title:
        pdf.setTitle(title)
    for number, lines in enumerate(pages, start=1):
        y = 800.0
        for line in lines:
            pdf.drawString(56, y, line)
            y -= 15
        pdf.drawString(
            56, 40, f"L 119/{31 + number} EN Official Journal of the European Union 4.5.2016"
        )
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


GDPR_PDF_PAGES = [
    [
        "REGULATION (EU) 2016/679 OF THE EUROPEAN PARLIAMENT AND OF THE COUNCIL",
        "of 27 April 2016",
        "CHAPTER I",
        "General provisions",
        "Article 1",
        "Subject-matter and objectives",
        "1. This Regulation lays down rules relating to the protection of natural persons with",
        "regard to the processing of personal data and rules relating to the free movement of",
        "personal data.",
        "2. This Regulation protects fundamental rights and freedoms of natural persons and in",
        "particular their right to the protection of personal data.",
    ],
    [
        "Article 2",
        "Material scope",
        "1. This Regulation applies to the processing of personal data wholly or partly by",
        "automated means and to the processing other than by automated means of personal data",
        "which form part of a filing system or are intended to form part of a filing system.",
        "2. This Regulation does not apply to the processing of personal data:",
        "(a) in the course of an activity which falls outside the scope of Union law;",
        "(b) by the Member States when carrying out activities which fall within the scope of",
        "Chapter 2 of Title V of the TEU;",
        "(c) by a natural person in the course of a purely personal or household activity.",
        "Article 3",
        "Territorial scope",
        "1. This Regulation applies to the processing of personal data in the context of the",
        "activities of an establishment of a controller or a processor in the Union, regardless",
        "of whether the processing takes place in the Union or not.",
        "2. This Regulation applies to the processing of personal data of data subjects who are",
        "in the Union by a controller or processor not established in the Union, where the",
        "processing activities are related to:",
    ],
    [
        "(a) the offering of goods or services, irrespective of whether a payment of the data",
        "subject is required, to such data subjects in the Union; or",
        "(b) the monitoring of their behaviour as far as their behaviour takes place within the",
        "Union.",
        "3. This Regulation applies to the processing of personal data by a controller not",
        "established in the Union, but in a place where Member State law applies by virtue of",
        "public international law.",
    ],
]


class TestPdf:
    def test_articles_carry_the_page_they_start_on(self) -> None:
        data = _pdf(GDPR_PDF_PAGES, title="Regulation (EU) 2016/679 (excerpt)")
        parsed = read_regulation("gdpr.pdf", data)
        pages = {c.section: c.page for c in parsed.chunks}
        assert pages == {
            "Preamble": 1,
            "Art. 1(1)": 1,
            "Art. 1(2)": 1,
            "Art. 2(1)": 2,
            "Art. 2(2)": 2,
            "Art. 3(1)": 2,
            "Art. 3(2)": 2,
            "Art. 3(3)": 3,
        }
        chunks = _by_section(parsed)
        # Article 3(2) starts on page 2 and its points run on to page 3, in one chunk.
        assert _flat(chunks["Art. 3(2)"].text).endswith(
            "(b) the monitoring of their behaviour as far as their behaviour takes place within "
            "the Union."
        )
        assert chunks["Art. 2(2)"].text.splitlines()[-1] == (
            "(c) by a natural person in the course of a purely personal or household activity."
        )
        assert chunks["Art. 2(1)"].heading == "Material scope"
        assert chunks["Art. 2(1)"].extra["parents"] == "Chapter I General provisions"
        assert chunks["Art. 2(1)"].locator == {
            "path": "gdpr.pdf",
            "section": "Art. 2(1)",
            "heading": "Material scope",
            "page": 2,
        }
        assert all(c.line_start == 0 and c.line_end == 0 for c in parsed.chunks)
        assert parsed.meta["title"] == "Regulation (EU) 2016/679 (excerpt)"
        assert parsed.meta["pages"] == 3

    def test_running_footers_are_dropped(self) -> None:
        parsed = read_regulation("gdpr.pdf", _pdf(GDPR_PDF_PAGES))
        assert not any("Official Journal" in chunk.text for chunk in parsed.chunks)

    def test_pdf_text_looks_like_a_regulation(self) -> None:
        reader = PdfReader(io.BytesIO(_pdf(GDPR_PDF_PAGES)))
        assert looks_like_regulation("\n".join(page.extract_text() for page in reader.pages))

    def test_encrypted_pdf_is_rejected(self) -> None:
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf(GDPR_PDF_PAGES))))
        writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
        encrypted = io.BytesIO()
        writer.write(encrypted)
        with pytest.raises(FileRejected, match=r"^encrypted PDF: "):
            read_regulation("locked.pdf", encrypted.getvalue())

    @pytest.mark.parametrize(
        "data",
        [b"%PDF-1.7\n1 0 obj << /Type /Catalog", b"not a PDF at all", b""],
        ids=["truncated", "garbage", "empty"],
    )
    def test_corrupt_pdf_is_rejected(self, data: bytes) -> None:
        with pytest.raises(FileRejected, match=r"^corrupt PDF: "):
            read_regulation("broken.pdf", data)

    def test_image_only_pdf_is_rejected(self) -> None:
        buffer = io.BytesIO()
        pdf = canvas.Canvas(buffer, pagesize=A4)
        pdf.drawImage(ImageReader(Image.new("RGB", (300, 400), "white")), 56, 300)
        pdf.showPage()
        pdf.save()
        with pytest.raises(FileRejected, match=r"no extractable text.*scanned"):
            read_regulation("scan.pdf", buffer.getvalue())


ARTICLES_AFTER_RECITALS = (
    "\nHAVE ADOPTED THIS REGULATION:\n\nArticle 1\nSubject matter\n\n"
    "1. This Regulation lays down rules.\n\n2. It protects rights.\n\n"
    "Article 2\nScope\n\n1. This Regulation applies to providers.\n"
)


def _sections(name: str, text: str) -> list[str]:
    return [chunk.section for chunk in read_regulation(name, text.encode()).chunks]


class TestRecitals:
    """A recital is cited by its number, "Recital 85", in every layout it comes in."""

    def test_pdf_footnotes_do_not_start_recitals(self) -> None:
        # The Official Journal prints the footnotes of the preamble at the foot of its pages:
        # "(1) OJ C 229 ..." after recital (3) is a footnote, and (3) goes on over the page.
        pages = [
            [
                "REGULATION (EU) 2016/679 OF THE EUROPEAN PARLIAMENT AND OF THE COUNCIL",
                "Having regard to the opinion of the European Economic and Social Committee (1),",
                "Whereas:",
                "(1) The protection of natural persons in relation to the processing of personal",
                "data is a fundamental right.",
                "(2) The principles of the protection should respect their fundamental rights.",
                "(3) Directive 95/46/EC of the European Parliament and of the Council (2) seeks to",
                "harmonise the protection of fundamental rights and freedoms of natural persons.",
                "(1) OJ C 229, 31.7.2012, p. 90.",
                "(2) Directive 95/46/EC of the European Parliament (OJ L 281, 23.11.1995, p. 31).",
            ],
            [
                "It also ensures the free flow of personal data between Member States.",
                "(4) The processing of personal data should be designed to serve mankind.",
                "HAVE ADOPTED THIS REGULATION:",
                "Article 1",
                "Subject-matter and objectives",
                "1. This Regulation lays down rules relating to the protection of natural persons.",
                "2. This Regulation protects fundamental rights and freedoms of natural persons.",
                "Article 2",
                "Material scope",
                "1. This Regulation applies to the processing of personal data.",
            ],
        ]
        parsed = read_regulation("gdpr.pdf", _pdf(pages))
        assert [(c.section, c.page) for c in parsed.chunks] == [
            ("Preamble", 1),
            ("Recital 1", 1),
            ("Recital 2", 1),
            ("Recital 3", 1),
            ("Recital 4", 2),
            ("Preamble", 2),
            ("Art. 1(1)", 2),
            ("Art. 1(2)", 2),
            ("Art. 2(1)", 2),
        ]
        chunks = _by_section(parsed)
        assert _flat(chunks["Recital 3"].text).endswith(
            "It also ensures the free flow of personal data between Member States."
        )
        assert chunks["Recital 3"].locator == {
            "path": "gdpr.pdf",
            "section": "Recital 3",
            "page": 1,
        }
        # The closing words of the preamble are not part of the last recital.
        assert "HAVE ADOPTED" not in chunks["Recital 4"].text

    def test_older_acts_open_each_recital_with_whereas(self) -> None:
        text = (
            "DIRECTIVE 95/46/EC OF THE EUROPEAN PARLIAMENT AND OF THE COUNCIL\n\n"
            "Acting in accordance with the procedure referred to in Article 189b (3),\n\n"
            "(1) Whereas the objectives of the Community include creating an ever closer union;\n\n"
            "(2) Whereas data-processing systems are designed to serve man;\n"
            + ARTICLES_AFTER_RECITALS
        )
        assert _sections("directive.txt", text)[:4] == [
            "Preamble",
            "Recital 1",
            "Recital 2",
            "Preamble",
        ]

    @pytest.mark.parametrize("heading", ["## Recitals", "### Whereas:"])
    def test_recitals_under_a_heading_of_their_own(self, heading: str) -> None:
        text = (
            f"# Regulation (EU) 2024/1689\n\n{heading}\n\n"
            "(84) To ensure legal certainty, a distributor may be considered a provider.\n\n"
            "(85) General-purpose AI systems may be used as high-risk AI systems.\n\n"
            "Providers of such systems should closely cooperate with the providers.\n\n"
            "## Articles\n\n### Article 1\n\n1. This Regulation lays down rules.\n"
        )
        parsed = read_regulation("ai_act.md", text.encode())
        assert [c.section for c in parsed.chunks] == ["Recital 84", "Recital 85", "Art. 1(1)"]
        # A recital's second paragraph stays with it.
        assert _by_section(parsed)["Recital 85"].text.endswith(
            "closely cooperate with the providers."
        )

    def test_one_recital_per_heading(self) -> None:
        # Unofficial copies give each recital a page (and a title) of its own.
        text = (
            "# Recitals of the AI Act\n\n"
            "## Recital 85 - Cooperation along the value chain\n\n"
            "General-purpose AI systems may be used as high-risk AI systems.\n\n"
            "## Recital 86 - Change of provider\n\n"
            "Where the provider that initially placed the system on the market changes.\n"
        )
        parsed = read_regulation("recitals.md", text.encode())
        assert [(c.section, c.line_start, c.line_end) for c in parsed.chunks] == [
            ("Recital 85", 3, 5),
            ("Recital 86", 7, 9),
        ]

    def test_recital_cited_in_an_article_is_not_a_recital(self) -> None:
        text = (
            "REGULATION\n\nWhereas:\n\n(1) The protection is a right.\n"
            "\nHAVE ADOPTED THIS REGULATION:\n\nArticle 1\nSubject matter\n\n"
            "1. The principles set out in\nRecital 1\napply to providers.\n\n2. Second.\n"
        )
        assert _sections("act.txt", text) == [
            "Preamble",
            "Recital 1",
            "Preamble",
            "Art. 1(1)",
            "Art. 1(2)",
        ]


class TestLooksLikeRegulation:
    @pytest.mark.parametrize("name", ["gdpr_excerpt.md", "gdpr_excerpt.txt", "gdpr_excerpt.html"])
    def test_true_for_regulations(self, name: str) -> None:
        assert looks_like_regulation((DATA / name).read_text(encoding="utf-8"))

    def test_true_for_us_sections(self) -> None:
        text = "§ 164.501 Definitions.\n\nText.\n\n§ 164.502 Uses and disclosures.\n\nText.\n"
        assert looks_like_regulation(text)

    def test_false_for_a_readme(self) -> None:
        readme = (
            "# Widgets\n\n"
            "Widgets is a library. See section 2 of the guide, article 5 of our blog.\n\n"
            "## Install\n\n1. Download it.\n2. Run `make`.\n\n"
            "## Usage\n\n(a) import it; (b) call it.\n\n"
            "Article 3 of the licence says you may copy it.\n"
        )
        assert not looks_like_regulation(readme)

    def test_true_for_headings_run_into_the_text(self) -> None:
        # How a PDF reads once an extractor has joined its lines into paragraphs.
        joined = " ".join(line for page in GDPR_PDF_PAGES for line in page)
        assert looks_like_regulation(joined)

    def test_false_for_prose_citing_articles(self) -> None:
        prose = (
            "Under Article 6(1) and Article 9 of the GDPR, and Article 17 on erasure, the "
            "controller must act; see also Article 21 and § 164.512(a) of the rule."
        )
        assert not looks_like_regulation(prose)

    def test_one_article_is_not_enough(self) -> None:
        assert not looks_like_regulation("Article 1\nScope\nThis applies.\n")

    def test_true_for_a_rulebook(self) -> None:
        assert looks_like_regulation((DATA / RULEBOOK).read_text(encoding="utf-8"))

    def test_true_for_two_rules_and_their_guidance(self) -> None:
        text = (
            "1.1.1 These Rules apply to every Widget Exchange.\n"
            "1.1.2 A Widget Exchange must keep records.\n"
            "Guidance\n"
            "1. Records may be electronic.\n"
        )
        assert looks_like_regulation(text)
        assert not looks_like_regulation(text.replace("Guidance\n", ""))

    def test_false_for_a_changelog(self) -> None:
        changelog = (
            "# Changelog\n\n"
            "## 1.2.3 - 2024-01-01\n\n### Fixed\n\n- No crash on empty files.\n\n"
            "## 1.2.2 - 2023-11-20\n\n### Added\n\n- A `--quiet` flag for the command line.\n\n"
            "## 1.2.1 - 2023-10-02\n\n- Faster start-up.\n\n"
            "1.1.4 (2023-09-01) Security release.\n"
            "1.1.3 Released 2023-08-01: support for Python 3.12.\n"
        )
        assert not looks_like_regulation(changelog)

    def test_false_for_versions_newest_first(self) -> None:
        # Sentences after the numbers, but a changelog counts down where rules count up.
        changelog = (
            "Release notes\n\n"
            "2.3.4 Fixed a crash when the configuration file is empty.\n"
            "2.3.3 Added a command that exports the settings as JSON.\n"
            "2.2.1 Dropped support for the legacy storage format.\n"
            "1.9.2 Documented the environment variables.\n"
        )
        assert not looks_like_regulation(changelog)
        assert looks_like_regulation("\n".join(reversed(changelog.splitlines())))

    def test_false_for_contents_and_questions(self) -> None:
        manual = (
            "Contents\n"
            "3.5.1 Pages in other character sets ............................ 11\n"
            "4.2.1 Stray pages .............................................. 14\n"
            "6.1.1 Hierarchies with no index database ....................... 19\n"
            "Frequently asked questions\n"
            "3.3.3 Why does the tool not report path names for removed files on this system?\n"
            "3.14.1 How do I ask the tool for the socket options and the states of a connection\n"
            "3.18.3 Does the tool report registrations for the ports that a service listens on?\n"
        )
        assert not looks_like_regulation(manual)

    def test_false_for_a_paper_with_numbered_sections(self) -> None:
        paper = (
            "# Learning to count widgets\n\n## Abstract\n\nWe count widgets.\n\n"
            "## 3 Method\n\n### 3.1 Data\n\nWe use 1.2.3 million images.\n\n"
            "#### 3.1.1 Collection\n\nImages were collected over a year.\n\n"
            "#### 3.1.2 Annotation\n\nTwo annotators labelled each image.\n\n"
            "#### 3.1.3 Splits of the data for training, validation and testing\n\nText.\n\n"
            "### 3.2 Results\n\nTable 2 shows the results.\n"
        )
        assert not looks_like_regulation(paper)
        engines = Path(__file__).parents[1] / "data" / "papers" / "engines.md"
        assert not looks_like_regulation(engines.read_text(encoding="utf-8"))


def test_unsupported_suffix_is_rejected() -> None:
    with pytest.raises(FileRejected, match="unsupported file type"):
        read_regulation("law.docx", b"PK\x03\x04")
