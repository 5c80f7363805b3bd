"""Regulations: articles, paragraphs and points, each chunk carrying its full citation path.

Every format is read into one tree: divisions (part, title, chapter, section) above units (an
article, a US-style §, a rulebook's rule "1.1.2" or its guidance), units holding numbered
paragraphs, paragraphs holding points (a) and points holding subpoints (i). XML is read by its
elements (EUR-Lex Formex, USLM, Akoma Ntoso, or any XML whose element names look like
article/paragraph/point); HTML, Markdown, plain text and PDF are read line by line by one
detector. The tree is then cut into one chunk per numbered paragraph. A paragraph much longer
than the embedder's window is cut between its points, and each piece carries the deeper path
("Art. 17(3)(b)"); nothing is ever cut inside a point.

Rulebooks in the UK/ADGM/DFSA style number their rules with three or more levels ("1.1.2",
"A2.1.3"), under sections "1.1 Application" and chapters "1. INTRODUCTION", and follow a rule
with "Guidance" notes "1.", "2.". A rule is a unit cited by its bare number ("1.1.2", "1.1.2(1)"
for its numbered paragraph); its heading is its section's title and its parents the chapter.
Guidance is a unit of its own, "1.1.2 Guidance", cut into one chunk per numbered note
("1.1.2 Guidance 1"): a note explains the rule but is not the rule, so it is never packed into
the rule's chunk, and a question about either lands on a chunk that holds only that passage.

The package, one concern a module: ``tree`` (what every format is read into), the readers
(``xml_reader``; ``line_parser`` fed by ``markdown``, ``html_lines`` and ``pdf_lines``, with
``headings``, ``rulebook`` and ``labels`` recognising the structure of a line), ``definitions``
and ``references`` (what a passage defines and cites), ``chunker``, ``reader``
(``read_regulation``) and ``detect`` (``looks_like_regulation``); ``text_helpers`` is shared.
"""

from ingestion.sources.regulation.chunker import SPLIT_FACTOR
from ingestion.sources.regulation.detect import looks_like_regulation
from ingestion.sources.regulation.reader import SUFFIXES, read_regulation

__all__ = ["SPLIT_FACTOR", "SUFFIXES", "looks_like_regulation", "read_regulation"]
