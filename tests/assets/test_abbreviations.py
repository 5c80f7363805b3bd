"""Abbreviations learnt from an asset's own text: which definitions are taken, which are not,
and questions rewritten with them."""

import pytest

from assets.abbreviations import Abbreviations, extract


class TestExtract:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "Each controller shall designate a data protection officer (DPO) where the "
                "processing is carried out by a public authority.",
                [("DPO", "data protection officer")],
                id="regulation-long-then-short",
            ),
            pytest.param(
                "This Regulation lays down rules on the protection of natural persons (the "
                "\u2018GDPR\u2019). The General Data Protection Regulation (the "
                "\u2018GDPR\u2019) applies to the processing of personal data.",
                [("GDPR", "General Data Protection Regulation")],
                id="regulation-the-quoted",
            ),
            pytest.param(
                "The European Data Protection Board (hereinafter referred to as \u2018EDPB\u2019) "
                "is hereby established.",
                [("EDPB", "European Data Protection Board")],
                id="regulation-hereinafter",
            ),
            pytest.param(
                "(12) \u2018DPO\u2019 means the data protection officer designated under "
                "Article 37;",
                [("DPO", "data protection officer")],
                id="regulation-means",
            ),
            pytest.param(
                "Article 16(1) of the Treaty on the Functioning of the European Union (TFEU) "
                "provides that everyone has the right to the protection of personal data.",
                [("TFEU", "Treaty on the Functioning of the European Union")],
                id="regulation-small-words-skipped",
            ),
            pytest.param(
                "Providers of general-purpose AI (GPAI) models shall draw up technical "
                "documentation; artificial intelligence (AI) systems are defined in Article 3.",
                [("GPAI", "general-purpose AI"), ("AI", "artificial intelligence")],
                id="regulation-letters-from-one-word",
            ),
            pytest.param(
                "We fine-tune a large language model (LLM) with low-rank adaptation (LoRA) and "
                "report mean reciprocal rank (MRR) and normalized discounted cumulative gain "
                "(nDCG). RAG stands for retrieval-augmented generation.",
                [
                    ("LLM", "large language model"),
                    ("LoRA", "low-rank adaptation"),
                    ("MRR", "mean reciprocal rank"),
                    ("nDCG", "normalized discounted cumulative gain"),
                    ("RAG", "retrieval-augmented generation"),
                ],
                id="paper",
            ),
            pytest.param(
                "Levels were measured by quantitative polymerase chain reaction (qPCR) in "
                "patients with acute kidney injury (AKI) and in licensed Financial "
                "Institutions (FIs).",
                [
                    ("qPCR", "quantitative polymerase chain reaction"),
                    ("AKI", "acute kidney injury"),
                    ("FIs", "Financial Institutions"),
                ],
                id="paper-lowercase-prefix-and-plural",
            ),
            pytest.param(
                'def expire(entry):\n    """Drop an entry that outlived its time to live (TTL).'
                '\n\n    The LRU (least recently used) entries go first.\n    """',
                [("TTL", "time to live"), ("LRU", "least recently used")],
                id="code-docstring",
            ),
            pytest.param(
                "# Records are kept for their time to live (TTL): five years.",
                [("TTL", "time to live")],
                id="code-comment",
            ),
            pytest.param(
                "Such a body is called the data protection\nauthority (DPA).",
                [("DPA", "data protection authority")],
                id="across-a-line-break",
            ),
            pytest.param(
                "a database management system (DBMS) and a Health Insurance Portability and "
                "Accountability Act (HIPAA) notice",
                [
                    ("DBMS", "database management system"),
                    ("HIPAA", "Health Insurance Portability and Accountability Act"),
                ],
                id="one-more-letter-and-a-skipped-and",
            ),
        ],
    )
    def test_definitions_taken(self, text: str, expected: list[tuple[str, str]]) -> None:
        assert extract(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("Regulation (EU) 2016/679 of the European Parliament", id="citation"),
            pytest.param("as provided in point (a) of Article 6(1) (A)", id="single-letters"),
            pytest.param("This Regulation (hereinafter 'GDPR') applies", id="does-not-spell"),
            pytest.param("see Article 37 (DPO) for the tasks", id="a-number-before"),
            pytest.param("Transport Layer Security (TLS 1.3) is required", id="a-number-inside"),
            pytest.param("results in the top 10 (TT) were", id="digits-in-the-long-form"),
            pytest.param("the subject (DS2) may object", id="digits-in-the-abbreviation"),
            pytest.param("the model (MOD) is trained", id="one-word"),
            pytest.param(
                "the Charter of Fundamental Rights (the \u2018Charter\u2019)", id="a-word"
            ),
            pytest.param("Widget Exchange Conduct Rules (WXC)", id="letter-not-an-initial"),
            pytest.param("GDPR (Regulation 2016/679) and TTL (see below)", id="short-then-not"),
            pytest.param("the margin period of risk (MPORi)", id="subscript"),
            pytest.param("the data protection officer, (DPO)", id="a-comma-between"),
            pytest.param("class Config(BaseModel):\n    ttl: int  # TTL(seconds)", id="code-call"),
            pytest.param("\u2018personal data\u2019 means any information", id="a-defined-term"),
        ],
    )
    def test_not_taken(self, text: str) -> None:
        assert extract(text) == []


class TestAbbreviations:
    @pytest.fixture
    def known(self) -> Abbreviations:
        return Abbreviations.learn(
            [
                "a data protection officer (DPO); the data protection authority (DPA)",
                "general-purpose AI (GPAI) and artificial intelligence (AI)",
                "licensed Financial Institutions (FIs)",
            ]
        )

    def test_learnt(self, known: Abbreviations) -> None:
        assert known.pairs == (
            ("AI", "artificial intelligence"),
            ("DPA", "data protection authority"),
            ("DPO", "data protection officer"),
            ("FI", "Financial Institution"),  # learnt in the plural, kept in the singular
            ("GPAI", "general-purpose AI"),
        )

    def test_the_most_frequent_long_form_wins(self) -> None:
        learnt = Abbreviations.learn(
            [
                "personal data (PD)",
                "Parkinson's disease (PD) patients; people with Parkinson's disease (PD)",
            ]
        )
        assert learnt.pairs == (("PD", "Parkinson's disease"),)

    @pytest.mark.parametrize(
        ("question", "contracted"),
        [
            ("What must the data protection officer do?", "What must the DPO do?"),
            ("What must the DATA PROTECTION OFFICER do?", "What must the DPO do?"),
            ("Do data protection officers report?", "Do DPOs report?"),
            ("Which financial institutions?", "Which FIs?"),
            ("Is a financial institution liable?", "Is a FI liable?"),
            (
                "Who provides general purpose artificial intelligence models?",
                "Who provides GPAI models?",
            ),
            ("What must the DPO do?", "What must the DPO do?"),
            (
                "What must the data protection, officer do?",
                "What must the data protection, officer do?",
            ),
            ("How long does a refund take?", "How long does a refund take?"),
        ],
    )
    def test_contract(self, known: Abbreviations, question: str, contracted: str) -> None:
        assert known.contract(question) == contracted

    def test_terms_named_either_way(self, known: Abbreviations) -> None:
        assert known.terms("Does the DPO answer to the data protection authority?") == {
            "DPO",
            "DPA",
        }
        assert known.terms("Do DPOs and financial institutions talk?") == {"DPO", "FI"}
        assert known.terms("Who is the dpo?") == frozenset()  # typed in lowercase: not known
        assert Abbreviations().terms("What must the DPO do?") == frozenset()

    def test_json_round_trip(self, known: Abbreviations) -> None:
        assert Abbreviations.from_json(known.to_json()) == known
        assert Abbreviations.from_json(None) == Abbreviations()
