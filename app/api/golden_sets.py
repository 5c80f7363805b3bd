"""Golden sets over HTTP: the expert submits one for approval and sees their private eval runs;
an admin approves or rejects submitted sets (``app.golden_sets``)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
)

from app import golden_sets
from app.api.schemas import ERRORS, ErrorBody
from app.deps import AdminAccount, CurrentAccount, SessionDep
from core.patterns import NON_SPACE, NOT_BLANK, SPACE, documented
from evals.schemas import EvalRunPublic, GoldenSetPublic

router = APIRouter(tags=["golden sets"], responses={401: ERRORS[401]})

DECIDED = {"model": ErrorBody, "description": "The set was already approved or rejected"}
MAX_ITEMS = 2000


# The rules of evals/golden.py, as the document states them: what the schema allows, a golden
# set accepts (two items cannot share an id: they are keyed by it).
# No ".." part (it would name a file outside the corpus, or the corpus itself), and some
# character besides whitespace, dots and slashes.
FILE_CHAR = f"[^{SPACE[1:-1]}./]"
PATH = rf"^(?![\s\S]*(?:^|/){SPACE}*\.\.{SPACE}*(?:/|$))[\s\S]*{FILE_CHAR}"
# Nothing before or after it that reading would strip.
ITEM_ID = rf"^{NON_SPACE}(?:[\s\S]*{NON_SPACE})?$"


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is blank")
    return value


def _names_a_file(value: str) -> str:
    if any(part.strip() == ".." for part in value.split("/")):
        raise ValueError('a path has no ".." part: name the file as the corpus has it')
    if all(c.isspace() or c in "./" for c in value):
        raise ValueError("the path names no file")
    return value


def _bare_id(value: str) -> str:
    if value != value.strip() or not value:
        raise ValueError("an item's id is not blank and has no spaces around it")
    return value


def _a_boolean(value: Any) -> Any:
    if not isinstance(value, bool):  # a Literal[False] takes 0 as well
        raise ValueError("unanswerable is true or false")
    return value


Text = Annotated[str, AfterValidator(_not_blank), Field(json_schema_extra=documented(NOT_BLANK))]
ShortText = Annotated[
    str,
    AfterValidator(_not_blank),
    Field(max_length=500, json_schema_extra=documented(NOT_BLANK)),
]
ItemId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_bare_id),
    Field(json_schema_extra=documented(ITEM_ID)),
]


class UnitAtPath(BaseModel):
    """Part of a file of the corpus: the file, optionally narrowed."""

    model_config = ConfigDict(extra="forbid")

    path: Annotated[
        str,
        AfterValidator(_names_a_file),
        Field(max_length=1000, json_schema_extra=documented(PATH)),
    ] = Field(description="The file, as the asset's locators name it", examples=["policies.md"])
    lines: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None = Field(
        default=None,
        description="[first, last], 1-based and inclusive; written backwards it is the same span",
    )
    section: ShortText | None = Field(default=None, description="Citation or heading path")
    page: int | None = Field(default=None, ge=1)
    symbol: ShortText | None = None
    text: Annotated[Text, Field(max_length=20_000)] | None = None
    grade: int = Field(default=1, ge=1, le=10, description="Graded relevance, 2 = best")

    @field_validator("lines")
    @classmethod
    def _forwards(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        # A span written backwards means the same span.
        return None if value is None else (min(value), max(value))


class UnitQuote(BaseModel):
    """A snippet an answer must retrieve, quoted exactly."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[Text, Field(max_length=20_000)]
    grade: int = Field(default=1, ge=1, le=10)


def _unit_kind(value: Any) -> str:
    at_path = isinstance(value, UnitAtPath) or (isinstance(value, dict) and "path" in value)
    return "path" if at_path else "text"


Unit = Annotated[
    Annotated[UnitAtPath, Tag("path")] | Annotated[UnitQuote, Tag("text")],
    Discriminator(_unit_kind),
]
Fact = Annotated[Text, Field(max_length=1000)]


class AnswerableItem(BaseModel):
    """A question the corpus answers: the units a good answer retrieves and cites, and the
    facts it must state (each a string, or alternatives of which one must appear)."""

    model_config = ConfigDict(extra="forbid")

    question: Annotated[Text, Field(max_length=2000)]
    expected: list[Unit] = Field(min_length=1, max_length=50)
    answer: str | None = Field(default=None, max_length=20_000, description="A reference answer")
    unanswerable: Annotated[Literal[False], BeforeValidator(_a_boolean)] = False
    facts: list[Fact | Annotated[list[Fact], Field(min_length=1, max_length=20)]] = Field(
        default_factory=list, max_length=20
    )
    tags: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=20)


class UnanswerableItem(BaseModel):
    """A question the corpus does not answer: a right answer abstains."""

    model_config = ConfigDict(extra="forbid")

    question: Annotated[Text, Field(max_length=2000)]
    unanswerable: Annotated[Literal[True], BeforeValidator(_a_boolean)]
    answer: str | None = Field(default=None, max_length=20_000)
    tags: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=20)


def _item_kind(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "unanswerable" if isinstance(value, UnanswerableItem) else "answerable"
    unanswerable = isinstance(value, dict) and value.get("unanswerable") is True
    return "unanswerable" if unanswerable else "answerable"


Item = Annotated[
    Annotated[AnswerableItem, Tag("answerable")] | Annotated[UnanswerableItem, Tag("unanswerable")],
    Discriminator(_item_kind),
]


def _keyed_by_id(schema: dict[str, Any]) -> None:
    """Every key is an item id and every value an item (pydantic would let a key outside the
    pattern carry anything)."""
    ((pattern, item),) = schema.pop("patternProperties").items()
    schema["additionalProperties"] = item
    schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}


class GoldenSetSubmit(BaseModel):
    """A golden set as JSON: its items keyed by id, each as one line of a JSONL golden set
    (evals/golden.py) without its ``id``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, json_schema_extra=documented(NOT_BLANK), examples=["refunds"]
    )
    items: dict[ItemId, Item] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        json_schema_extra=_keyed_by_id,
        examples=[
            {
                "refund-days": {
                    "question": "How long does a refund take?",
                    "expected": [{"path": "policies.md", "lines": [5, 8], "grade": 2}],
                    "facts": ["14 days"],
                },
                "loyalty-crypto": {"question": "Can I pay in bitcoin?", "unanswerable": True},
            }
        ],
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _not_blank(value).strip()

    def lines(self) -> list[dict[str, Any]]:
        """The items as lines of a JSONL golden set."""
        return [
            {"id": key, **item.model_dump(mode="json", exclude_none=True, exclude_defaults=True)}
            for key, item in self.items.items()
        ]


class GoldenSetDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=1000, description="Why; shown to the expert")


@router.post(
    "/assets/{slug}/golden-sets",
    status_code=status.HTTP_201_CREATED,
    responses={403: ERRORS[403], 404: ERRORS[404], 422: ERRORS[422]},
)
def submit_golden_set(
    session: SessionDep, account: CurrentAccount, slug: str, body: GoldenSetSubmit
) -> GoldenSetPublic:
    """Submit a golden set of your asset for approval. Until an admin approves it, it is your
    private diagnostic; once approved, the platform runs it and its runs count in the public
    quality score."""
    golden = golden_sets.submit(
        session, account=account, slug=slug, name=body.name, items=body.lines()
    )
    return GoldenSetPublic.model_validate(golden_sets.golden_public(session, golden))


@router.get("/assets/{slug}/golden-sets", responses={403: ERRORS[403], 404: ERRORS[404]})
def list_golden_sets(
    session: SessionDep, account: CurrentAccount, slug: str
) -> list[GoldenSetPublic]:
    """Your asset's submitted golden sets and their status, newest first."""
    found = golden_sets.for_asset(session, account=account, slug=slug)
    return [GoldenSetPublic.model_validate(golden_sets.golden_public(session, g)) for g in found]


@router.get("/assets/{slug}/eval-runs", responses={403: ERRORS[403], 404: ERRORS[404]})
def private_eval_runs(
    session: SessionDep, account: CurrentAccount, slug: str
) -> list[EvalRunPublic]:
    """Your own ``vouch eval`` runs of your asset (private: not in the public score)."""
    runs = golden_sets.private_runs(session, account=account, slug=slug)
    return [EvalRunPublic.model_validate(golden_sets.run_public(r)) for r in runs]


@router.get("/admin/golden-sets", responses={403: ERRORS[403], 422: ERRORS[422]})
def admin_golden_sets(
    session: SessionDep,
    _admin: AdminAccount,
    state: Annotated[Literal["submitted", "approved", "rejected"], Query(alias="status")] = (
        "submitted"
    ),
) -> list[GoldenSetPublic]:
    """Golden sets of one status (submitted: waiting for a decision), oldest first."""
    return [
        GoldenSetPublic.model_validate(golden_sets.golden_public(session, g))
        for g in golden_sets.waiting(session, status=state)
    ]


@router.post(
    "/admin/golden-sets/{golden_set_id}/approve",
    responses={403: ERRORS[403], 404: ERRORS[404], 409: DECIDED, 422: ERRORS[422]},
)
def approve_golden_set(
    session: SessionDep, admin: AdminAccount, golden_set_id: str, body: GoldenSetDecision
) -> GoldenSetPublic:
    """Approve a submitted set: the platform runs it from now on and its runs count."""
    golden = golden_sets.decide(
        session, admin=admin, golden_set_id=golden_set_id, approved=True, note=body.note
    )
    return GoldenSetPublic.model_validate(golden_sets.golden_public(session, golden))


@router.post(
    "/admin/golden-sets/{golden_set_id}/reject",
    responses={403: ERRORS[403], 404: ERRORS[404], 409: DECIDED, 422: ERRORS[422]},
)
def reject_golden_set(
    session: SessionDep, admin: AdminAccount, golden_set_id: str, body: GoldenSetDecision
) -> GoldenSetPublic:
    """Reject a submitted set: it stays the expert's private diagnostic."""
    golden = golden_sets.decide(
        session, admin=admin, golden_set_id=golden_set_id, approved=False, note=body.note
    )
    return GoldenSetPublic.model_validate(golden_sets.golden_public(session, golden))
