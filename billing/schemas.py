"""Response shapes of balances, charges, subscriptions, payouts and statements. Money is in
minor units (cents) of a lower-case ISO 4217 currency; times are ISO 8601 strings."""

from pydantic import BaseModel, Field

# Amounts by currency: {"usd": 1200}.
ByCurrency = dict[str, int]


class ChargeRow(BaseModel):
    """One answer's charge, as balances and earnings list them."""

    consultation_id: str
    asset: str | None
    answer_status: str | None = Field(
        description="final, abstained, pending_review, corrected or rejected"
    )
    amount: int
    fee: int
    currency: str
    source: str = Field(examples=["credits", "subscription", "overage", "trial", "free"])
    status: str = Field(examples=["held", "disputed", "released", "refunded"])
    created_at: str
    release_after: str


class AnswerRow(ChargeRow):
    """One question of a client's history, with its charge."""

    question: str
    state: str = Field(
        description="final, pending_review, accepted, corrected, refunded or abstained"
    )
    state_label: str


class AnswerPage(BaseModel):
    items: list[AnswerRow]
    total: int
    page: int
    per_page: int
    pages: int
    next_page: int | None
    previous_page: int | None


class SubscriptionPublic(BaseModel):
    id: str
    asset: str
    status: str
    period_start: str | None
    period_end: str | None
    included: int = Field(description="Questions a period includes")
    used: int = Field(description="Questions asked this period")
    monthly: int | None
    overage: int | None
    currency: str


class ClientSummary(BaseModel):
    credits: ByCurrency
    subscriptions: list[SubscriptionPublic] = Field(description="Newest first")
    charges: list[ChargeRow] = Field(description="The latest, newest first")


class PayoutPublic(BaseModel):
    id: str
    amount: int
    currency: str
    status: str
    transfer_id: str | None
    failure: str | None
    created_at: str


class ExpertSummary(BaseModel):
    held: ByCurrency = Field(description="In escrow until clients accept or windows pass")
    available: ByCurrency
    payout_pending: ByCurrency
    paid_out: ByCurrency
    payouts: list[PayoutPublic] = Field(description="The latest, newest first")
    charges: list[ChargeRow] = Field(description="The latest, newest first")


class PlatformSummary(BaseModel):
    revenue: ByCurrency
    accounts: dict[str, ByCurrency] = Field(
        description="By currency, the balance of each group of ledger accounts"
    )
    unbalanced_transactions: list[str] = Field(description="Should be empty")


class StatementLinePublic(BaseModel):
    date: str
    kind: str
    memo: str
    account: str
    currency: str
    amount: int
    balance: int


class Statement(BaseModel):
    month: str = Field(examples=["2026-11"])
    lines: list[StatementLinePublic]


class CreditsGranted(BaseModel):
    email: str
    currency: str
    credits: int = Field(description="The client's credits in `currency` after the grant")


class PayoutRun(BaseModel):
    id: str
    expert_id: str
    amount: int
    currency: str
    status: str
    transfer_id: str | None
    failure: str | None
