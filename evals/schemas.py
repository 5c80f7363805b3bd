"""Response shapes of golden sets and eval runs; times are ISO 8601 strings in UTC."""

from typing import Any

from pydantic import BaseModel, Field


class GoldenSetPublic(BaseModel):
    id: str
    asset: str | None = Field(description="The asset's slug; null once it is gone")
    name: str
    sha256: str
    size: int = Field(description="Questions in the set, answerable or not")
    questions: list[dict[str, Any]] = Field(
        description="The items as lines of a JSONL golden set (evals/golden.py)"
    )
    status: str = Field(examples=["submitted", "approved", "rejected"])
    note: str = Field(description="The admin's note on the decision")
    submitted_by: str
    decided_at: str | None
    created_at: str


class EvalRunPublic(BaseModel):
    id: str
    scope: str = Field(examples=["private", "platform", "approved"])
    golden: str = Field(description="The golden set's name")
    golden_sha256: str
    size: int
    k: int
    metrics: dict[str, Any] = Field(
        description="By metric name, its figures", examples=[{"recall@10": {"value": 0.8, "n": 40}}]
    )
    created_at: str
