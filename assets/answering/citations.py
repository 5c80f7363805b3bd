"""Citations in an answer's text: ``[n]`` markers, the sentences they follow, and renumbering.

``answer_sentences`` cuts an answer into sentences, each with the citations after it (code
blocks whole); ``cited_numbers`` reads the passage numbers a text cites; ``_Renumbering`` keeps
only the citations of passages the model was given, renumbered by first mention, and works on a
stream piece by piece exactly as on the whole text.
"""

import re

_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# The end of an answer sentence, with the citations that follow its full stop.
_ANSWER_SENTENCE_END = re.compile(r"[.!?]+(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])*(?=\s|$)")
_FENCE = re.compile(r"(```.*?(?:```|$))", re.S)


def answer_sentences(text: str) -> list[str]:
    """The sentences of an answer, each with the citations that follow it; code blocks whole."""
    pieces: list[str] = []
    for block in _FENCE.split(text):
        if block.startswith("```"):
            pieces.append(block)
            continue
        for line in block.split("\n"):
            start = 0
            for end in _ANSWER_SENTENCE_END.finditer(line):
                pieces.append(line[start : end.end()].strip())
                start = end.end()
            pieces.append(line[start:].strip())
    units: list[str] = []
    for piece in filter(None, pieces):
        if units and not _CITE.sub("", piece).strip(" .,;:"):  # citations on their own
            units[-1] += " " + piece
        else:
            units.append(piece)
    return units


def cited_numbers(text: str) -> list[int]:
    """The passage numbers ``text`` cites, in order of first mention."""
    seen: dict[int, None] = {}
    for match in _CITE.finditer(text):
        for number in re.split(r"\s*[,;]\s*", match.group(1)):
            seen.setdefault(int(number), None)
    return list(seen)


class _Renumbering:
    """Keeps citations of passages that were given, renumbered by first mention; drops others.

    Stateful, so that an answer streamed in pieces is renumbered exactly as it is whole.
    """

    def __init__(self, given: int) -> None:
        self.given = given
        self.numbers: dict[int, int] = {}  # passage number in the prompt -> number in the answer
        self.in_fence = False
        self.in_code = False

    def __call__(self, text: str) -> str:
        out = []
        for part in re.split(r"(```|`)", text):  # code (``items[0]``) is left as written
            if part == "```" and not self.in_code:
                self.in_fence = not self.in_fence
            elif part == "`" and not self.in_fence:
                self.in_code = not self.in_code
            elif not (self.in_fence or self.in_code):
                part = re.sub(r"\s*" + _CITE.pattern, self._replace, part)
            out.append(part)
        return "".join(out)

    def _replace(self, match: re.Match[str]) -> str:
        kept = []
        for raw in re.split(r"\s*[,;]\s*", match.group(1)):
            number = int(raw)
            if 1 <= number <= self.given:
                kept.append(self.numbers.setdefault(number, len(self.numbers) + 1))
        whole = match.group(0)
        space = whole[: len(whole) - len(whole.lstrip())]
        return space + "".join(f"[{n}]" for n in dict.fromkeys(kept)) if kept else ""
