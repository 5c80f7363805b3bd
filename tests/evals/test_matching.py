"""Which expected units a retrieved chunk hits: every overlap rule, both ways."""

from typing import Any

import pytest

from evals.golden import ExpectedUnit
from evals.matching import hits, section_hit, symbol_hit, texts_overlap, unit_hit

ART_17_3 = """3. Paragraphs 1 and 2 shall not apply to the extent that processing is necessary:
(a) for exercising the right of freedom of expression and information;
(b) for compliance with a legal obligation which requires processing by Union law;
(c) for reasons of public interest in the area of public health."""
ART_9_2_OPENING = "2. Paragraph 1 shall not apply if one of the following applies:"


def unit(**fields: Any) -> ExpectedUnit:
    return ExpectedUnit.model_validate(fields)


class TestPaths:
    def test_a_path_only_unit_matches_any_chunk_of_that_file(self) -> None:
        expected = unit(path="policies.md")
        assert unit_hit(expected, {"path": "policies.md", "lines": [40, 50]})
        assert unit_hit(expected, {"path": "policies.md", "section": "Anything"})
        assert not unit_hit(expected, {"path": "delivery.txt", "lines": [1, 9]})

    def test_paths_compare_exactly_after_normalising_dot_slash(self) -> None:
        assert unit_hit(unit(path="./docs/a.md"), {"path": "docs/a.md"})
        assert unit_hit(unit(path="docs/a.md"), {"path": "./docs/./a.md"})
        assert not unit_hit(unit(path="docs/a.md"), {"path": "docs/A.md"})
        assert not unit_hit(unit(path="a.md"), {"path": "docs/a.md"})

    def test_a_leading_src_is_not_stripped(self) -> None:
        assert not unit_hit(unit(path="src/click/core.py"), {"path": "click/core.py"})
        assert not unit_hit(unit(path="click/core.py"), {"path": "src/click/core.py"})

    def test_a_locator_without_a_path_hits_no_path_unit(self) -> None:
        verified = {"verified_answer": "va_1", "expert": "Ada", "date": "2026-11-26"}
        assert not unit_hit(unit(path="policies.md"), verified)


class TestLines:
    @pytest.mark.parametrize(
        ("chunk", "hit"),
        [
            ([5, 8], True),
            ([1, 5], True),  # shares the first line (inclusive)
            ([8, 12], True),  # shares the last line
            ([6, 7], True),  # inside
            ([1, 20], True),  # around
            ([1, 4], False),
            ([9, 12], False),
        ],
    )
    def test_inclusive_line_spans_overlap(self, chunk: list[int], hit: bool) -> None:
        assert unit_hit(unit(path="a.md", lines=[5, 8]), {"path": "a.md", "lines": chunk}) is hit

    def test_lines_need_the_same_path_and_a_chunk_with_lines(self) -> None:
        expected = unit(path="a.md", lines=[5, 8])
        assert not unit_hit(expected, {"path": "b.md", "lines": [5, 8]})
        assert not unit_hit(expected, {"path": "a.md", "section": "Art. 1"})


class TestSections:
    def test_a_chunk_that_is_part_of_the_expected_section_hits_it(self) -> None:
        chunk = {"path": "gdpr.xml", "section": "Art. 17(3)(b)"}
        assert unit_hit(unit(path="gdpr.xml", section="Art. 17(3)(b)"), chunk)
        assert unit_hit(unit(path="gdpr.xml", section="Art. 17(3)"), chunk)
        assert unit_hit(unit(path="gdpr.xml", section="Art. 17"), chunk)

    def test_siblings_and_prefixes_inside_a_number_do_not_hit(self) -> None:
        chunk = {"path": "gdpr.xml", "section": "Art. 17(3)(b)"}
        assert not unit_hit(unit(path="gdpr.xml", section="Art. 17(2)"), chunk)
        assert not unit_hit(unit(path="gdpr.xml", section="Art. 17(3)(a)"), chunk)
        assert not unit_hit(unit(path="gdpr.xml", section="Art. 1"), chunk)
        assert not section_hit("Art. 17", "Art. 1", "Article 17 text")
        assert not section_hit("1.1.2", "1.1.20", "")

    def test_a_broader_chunk_hits_a_narrower_section_it_contains(self) -> None:
        chunk = {"path": "gdpr.xml", "section": "Art. 17(3)"}
        assert unit_hit(unit(path="gdpr.xml", section="Art. 17(3)(b)"), chunk, ART_17_3)
        assert unit_hit(unit(path="gdpr.xml", section="Art. 17(3)(b)(ii)"), chunk, ART_17_3)
        # a whole article numbers its paragraphs "3."
        assert section_hit("Art. 17(3)", "Art. 17", "1. The data subject...\n" + ART_17_3)

    def test_a_broader_chunk_that_does_not_contain_the_part_misses(self) -> None:
        # the points of Art. 9(2) went into chunks of their own: its chunk is the opening only
        assert not section_hit("Art. 9(2)(a)", "Art. 9(2)", ART_9_2_OPENING)
        assert not section_hit("Art. 17(3)(e)", "Art. 17(3)", ART_17_3)
        assert not section_hit("Art. 17(4)", "Art. 17", ART_17_3)
        assert not section_hit("Art. 17(3)(b)", "Art. 17(3)", "")

    def test_rulebook_numbers_nest_at_dots(self) -> None:
        assert section_hit("1.1", "1.1.2", "")
        assert section_hit("1.1.2", "1.1", "1.1.1 Scope.\n1.1.2 A firm must keep records.")
        assert not section_hit("1.1.2", "1.1", "1.1.1 Scope.\n1.1.20 A firm must keep records.")

    def test_heading_paths_nest_at_their_separator(self) -> None:
        assert section_hit("Store policies", "Store policies > Refunds", "Refunds are paid back")
        intro = "# Store policies\n\nThese are the policies of the Example Garden Store."
        assert not section_hit("Store policies > Refunds", "Store policies", intro)
        assert section_hit("Store policies > Refunds", "Store policies", intro + "\n## Refunds")

    def test_spacing_does_not_matter(self) -> None:
        assert section_hit("Art. 17 (3)", "Art.  17(3)(b)", "")

    def test_a_chunk_without_a_section_misses_a_section_unit(self) -> None:
        assert not unit_hit(unit(path="gdpr.xml", section="Art. 17"), {"path": "gdpr.xml"})


class TestPages:
    def test_same_page_and_section_when_given(self) -> None:
        expected = unit(path="paper.pdf", page=4, section="3.2 Results")
        assert unit_hit(expected, {"path": "paper.pdf", "page": 4, "section": "3.2 Results"})
        assert not unit_hit(expected, {"path": "paper.pdf", "page": 5, "section": "3.2 Results"})
        assert not unit_hit(expected, {"path": "paper.pdf", "page": 4, "section": "3.3 Costs"})
        assert not unit_hit(expected, {"path": "other.pdf", "page": 4, "section": "3.2 Results"})

    def test_page_alone_ignores_the_section(self) -> None:
        expected = unit(path="paper.pdf", page=4)
        assert unit_hit(expected, {"path": "paper.pdf", "page": 4, "section": "1 Intro"})
        assert not unit_hit(expected, {"path": "paper.pdf", "section": "1 Intro"})

    def test_a_chunk_crossing_pages_covers_each(self) -> None:
        expected = unit(path="paper.pdf", page=5)
        assert unit_hit(expected, {"path": "paper.pdf", "page": 4, "pages": "4-5"})
        assert not unit_hit(expected, {"path": "paper.pdf", "page": 4, "pages": [3, 4]})

    def test_a_section_number_matches_its_titled_section(self) -> None:
        chunk = {"path": "paper.pdf", "page": 4, "section": "3.2 Results"}
        assert unit_hit(unit(path="paper.pdf", section="3.2"), chunk)
        assert not unit_hit(unit(path="paper.pdf", section="3.21"), chunk)


class TestSymbols:
    def test_a_method_chunk_hits_its_class(self) -> None:
        assert symbol_hit("LoyaltyCard", "LoyaltyCard.points_for", "")
        assert not symbol_hit("Loyalty", "LoyaltyCard.points_for", "")

    def test_a_class_chunk_hits_a_method_it_defines(self) -> None:
        text = "class LoyaltyCard:\n    def points_for(self, amount): ..."
        assert symbol_hit("LoyaltyCard.points_for", "LoyaltyCard", text)
        assert not symbol_hit("LoyaltyCard.add_purchase", "LoyaltyCard", text)
        assert not symbol_hit("LoyaltyCard.points_for", "Other", text)


class TestTexts:
    def test_one_text_containing_the_other_after_whitespace_normalisation(self) -> None:
        chunk = "Refunds are paid back to the original card\nwithin 14   days of the return."
        assert texts_overlap("paid back to the original card within 14 days", chunk)
        assert texts_overlap(chunk + " And more text around it.", chunk)
        assert not texts_overlap("paid back in cash within 14 days", chunk)
        assert not texts_overlap("", chunk)

    def test_a_substantial_shared_run_overlaps(self) -> None:
        expected = (
            "Every plant comes with a one-year guarantee. If a plant dies within a year despite "
            "normal care, bring a photo and the receipt"
        )
        # the snippet straddles two chunks: this one holds most of it
        chunk = "## Plant care guarantee\n\nEvery plant comes with a one-year guarantee. If a plant"
        assert texts_overlap(expected, chunk)
        # a short shared phrase is not enough
        assert not texts_overlap(expected, "Ask us: if a plant dies we help. Call the store.")

    def test_a_text_unit_with_a_path_needs_both(self) -> None:
        expected = unit(path="policies.md", text="within 14 days")
        assert unit_hit(expected, {"path": "policies.md"}, "paid within 14 days of return")
        assert not unit_hit(expected, {"path": "delivery.txt"}, "paid within 14 days of return")
        assert not unit_hit(expected, {"path": "policies.md"}, "paid within a week")

    def test_a_text_unit_matches_a_verified_answer_by_text(self) -> None:
        verified = {"verified_answer": "va_1", "expert": "Ada", "date": "2026-11-26"}
        assert unit_hit(unit(text="within 14 days"), verified, "Refunds arrive within 14 days.")


def test_hits_lists_every_unit_a_chunk_hits_in_golden_order() -> None:
    units = [
        unit(path="policies.md", lines=[15, 18]),
        unit(path="policies.md"),
        unit(path="policies.md", lines=[5, 8], grade=2),
        unit(text="within 14 days"),
    ]
    chunk = {"path": "policies.md", "lines": [5, 8], "section": "Store policies > Refunds"}
    assert hits(units, chunk, "Refunds are paid back within 14 days.") == [1, 2, 3]
    assert hits(units, {"path": "delivery.txt", "lines": [1, 9]}, "Delivery areas") == []
