"""Errors of the evals package."""

from core.errors import Conflict, InvalidInput, NotFound

# At most this many bad lines are listed; a file that is wrong everywhere says so once.
MAX_REPORTED = 20


class GoldenSetError(InvalidInput):
    """A golden set that cannot be used; each problem reads ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:MAX_REPORTED]
        if len(problems) > MAX_REPORTED:
            shown.append(f"... and {len(problems) - MAX_REPORTED} more")
        super().__init__("\n".join(shown))
        self.problems = problems


class InvalidEval(InvalidInput):
    pass


class GoldenSetNotFound(NotFound):
    pass


class GoldenSetDecided(Conflict):
    """An admin already approved or rejected the set."""
