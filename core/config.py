"""Settings: one pydantic-settings class, built only by the entry points (app, CLI, evals)."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # A request body larger than this is refused (413) before it is read, except on the routes
    # that take files, which have limits of their own (ingest, reports, credential documents).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # On SIGTERM, how long requests in flight and running tasks get before the process exits;
    # an ingestion job cut short is queued again and resumes where it stopped.
    shutdown_grace_seconds: int = Field(default=4, ge=0, le=60)


class AuthSettings(BaseModel):
    """Sign-in throttling. Wrong passwords allowed in ``failure_window_seconds`` per account and
    per client address (they come back evenly over the window); past either, sign-ins are
    refused with 429 before the password is checked. Password checks (argon2, ~50 ms of a core
    each) run ``password_workers`` at a time with ``password_waiting`` more in line; past that a
    sign-in is refused at once, so that a flood cannot take the threads other requests need."""

    failures_per_account: int = Field(default=5, ge=1)
    failures_per_address: int = Field(default=20, ge=1)
    failure_window_seconds: int = Field(default=900, ge=1)
    password_workers: int = Field(default=1, ge=1, le=32)
    password_waiting: int = Field(default=8, ge=0, le=1000)
    # Signs the links mailed for e-mail verification and password reset (HMAC-SHA256). Empty:
    # one is generated on first use and kept in the data dir (``secret_key`` file), so that
    # links survive restarts; replicas sharing a database need the same value set here.
    secret_key: SecretStr = SecretStr("")
    verify_link_hours: int = Field(default=48, ge=1, le=24 * 30)
    reset_link_hours: int = Field(default=2, ge=1, le=72)
    # Verification and reset mails per address, and per client address, in an hour; past
    # either the form answers as usual but nothing is sent (an inbox cannot be flooded).
    mails_per_address_hour: int = Field(default=5, ge=1, le=1000)
    mails_per_client_hour: int = Field(default=30, ge=1, le=10_000)


class MailSettings(BaseModel):
    """Mail over SMTP (verification and password-reset links). Without ``host`` no mail is
    sent: each message is written to the log and to ``outbox/`` in the data dir instead."""

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr = SecretStr("")
    starttls: bool = True
    from_: str = Field(default="Vouch <no-reply@localhost>", alias="from")
    timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # The site's address in mailed links; None: ``billing.public_url``.
    base_url: str | None = None

    model_config = ConfigDict(populate_by_name=True)


class OrcidSettings(BaseModel):
    """ORCID sign-in (OAuth, scope /authenticate), which proves that an account holds an
    ORCID iD. Off (no button) until ``client_id`` is set."""

    base_url: str = "https://orcid.org"
    client_id: str | None = None
    client_secret: SecretStr = SecretStr("")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @property
    def enabled(self) -> bool:
        return bool(self.client_id)


class ChromaSettings(BaseModel):
    """Where vectors live: on disk in the data dir, or a Chroma server when ``host`` is set."""

    host: str | None = None
    port: int = Field(default=8000, ge=1, le=65535)
    ssl: bool = False


class EmbeddingSettings(BaseModel):
    """``minilm`` runs all-MiniLM-L6-v2 locally; ``openai`` calls any compatible endpoint."""

    provider: Literal["minilm", "openai"] = "minilm"
    model: str = "text-embedding-3-small"
    base_url: str | None = None
    api_key: SecretStr = SecretStr("")
    batch_size: int = Field(default=32, ge=1, le=2048)


class LLMSettings(BaseModel):
    """An OpenAI-compatible chat endpoint for answers; without a base URL and model, answers
    are extractive (no LLM)."""

    base_url: str | None = None
    model: str | None = None
    api_key: SecretStr = SecretStr("")
    # Passages are trimmed to this many prompt tokens (tiktoken o200k_base).
    max_context_tokens: int = Field(default=3000, ge=200, le=200_000)
    max_answer_tokens: int = Field(default=500, ge=16, le=32_000)
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.model)


class RerankSettings(BaseModel):
    """A re-rank stage after the fused search (assets/rerank.py). ``http``: a ``/rerank``
    endpoint at ``url`` (Cohere, Jina, TEI, llama.cpp's server); ``llm``: the configured chat
    model ranks the first ``depth`` candidates; ``none`` (the default): the fused order stands.
    When the re-ranker fails, search keeps the fused order and logs why."""

    provider: Literal["none", "http", "llm"] = "none"
    url: str | None = None  # e.g. http://127.0.0.1:8080/v1/rerank
    model: str | None = None
    api_key: SecretStr = SecretStr("")
    depth: int = Field(default=20, ge=2, le=100)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _complete(self) -> "RerankSettings":
        if self.provider == "http" and not self.url:
            raise ValueError("rerank.provider is http: set VOUCH_RERANK__URL to the /rerank URL")
        return self


class QueueSettings(BaseModel):
    """Huey on SQLite in the data dir, or on Redis at ``redis_url`` (shared by ``vouch worker``
    processes on many machines); ``workers`` consumer threads run inside ``vouch serve``."""

    workers: int = Field(default=2, ge=0, le=32)
    # Run each task inline when it is enqueued, with no consumer (tests and scripts).
    immediate: bool = False
    redis_url: str | None = None  # e.g. redis://host:6379/0
    # The queue's name in Redis: deployments sharing one Redis need names of their own.
    name: str = Field(default="vouch", pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class IngestSettings(BaseModel):
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    max_unpacked_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    max_files: int = Field(default=20_000, ge=1)
    max_file_bytes: int = Field(default=2 * 1024 * 1024, ge=1)


class BillingSettings(BaseModel):
    """Fees, payouts and Stripe. Without a Stripe secret key the ledger still runs: an admin
    grants credits (``vouch credits grant``) and payouts are recorded as pending."""

    # Basis points of each released answer that go to platform revenue (2000 = 20%).
    platform_fee_bps: int = Field(default=2000, ge=0, le=10_000)
    # Available earnings below this (minor units) wait for the next payout run.
    payout_minimum: int = Field(default=1000, ge=1)
    currency: str = Field(default="usd", pattern="^[a-z]{3}$")
    # Questions per minute per account (API, pages and streams alike); past it, 429.
    asks_per_minute: int = Field(default=60, ge=1)
    # Keep those counts, and the sign-in throttle's, in Redis (redis://host:6379/0), shared by
    # every replica; None: in this process's memory.
    rate_limit_redis_url: str | None = None
    stripe_secret_key: SecretStr = SecretStr("")
    stripe_webhook_secret: SecretStr = SecretStr("")
    # The Connect endpoint's signing secret, when connected accounts' events (account.updated)
    # are sent to an endpoint of their own; the same URL serves both.
    stripe_connect_webhook_secret: SecretStr = SecretStr("")
    # Where Stripe's API is (a local Stripe-compatible server in tests); None is Stripe's own.
    stripe_api_base: str | None = None
    # This site's address, for Checkout's return links and Connect onboarding links.
    public_url: str = "http://127.0.0.1:8000"

    @property
    def stripe_enabled(self) -> bool:
        return bool(self.stripe_secret_key.get_secret_value())


class NotificationSettings(BaseModel):
    """Webhook deliveries: a failed POST is tried again after ``webhook_backoff_seconds``, then
    twice as long each time, until ``webhook_attempts`` attempts have failed.

    Webhook URLs may not point at loopback, private, link-local or other non-public addresses
    (the server's own services, a cloud's metadata endpoint) unless ``webhook_private_targets``
    is on: for a receiver on the same machine or network, never on a shared deployment."""

    webhook_attempts: int = Field(default=5, ge=1, le=20)
    webhook_backoff_seconds: float = Field(default=2.0, ge=0, le=3600)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_private_targets: bool = False


class MarketplaceSettings(BaseModel):
    """Lookups that verify credentials against public registries: ORCID's public API, a
    Crossref-style DOI API, GitHub's API. Each is off (None) until its base URL is set, and
    nothing is fetched while it is off (they need the internet)."""

    orcid_api: str | None = None  # e.g. https://pub.orcid.org/v3.0
    doi_api: str | None = None  # e.g. https://api.crossref.org
    github_api: str | None = None  # e.g. https://api.github.com
    lookup_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Certificates and licences uploaded for an admin to review (PDF or image).
    max_evidence_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # Commit authorship: the public git repositories the platform clones itself. Private,
    # loopback and link-local hosts are refused (no fetching inside the server's network)
    # unless allowed, as tests and closed installs need.
    allow_private_remotes: bool = False
    remote_timeout_seconds: float = Field(default=300.0, gt=0, le=3600)
    # Catalog asset pages (each answers sample questions live, for anyone, signed in or not)
    # per minute per client address; past it, 429.
    sample_pages_per_minute: int = Field(default=20, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VOUCH_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = None
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    chroma: ChromaSettings = ChromaSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    llm: LLMSettings = LLMSettings()
    rerank: RerankSettings = RerankSettings()
    queue: QueueSettings = QueueSettings()
    ingest: IngestSettings = IngestSettings()
    billing: BillingSettings = BillingSettings()
    notifications: NotificationSettings = NotificationSettings()
    marketplace: MarketplaceSettings = MarketplaceSettings()
    mail: MailSettings = MailSettings()
    orcid: OrcidSettings = OrcidSettings()

    @model_validator(mode="after")
    def _rerank_has_its_model(self) -> "Settings":
        if self.rerank.provider == "llm" and not self.llm.enabled:
            raise ValueError(
                "rerank.provider is llm: set VOUCH_LLM__BASE_URL and VOUCH_LLM__MODEL, the chat "
                "model that ranks"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'vouch.db'}"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def uploads_path(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def work_path(self) -> Path:
        """Where ingestion jobs unpack archives, one folder per job, removed when it ends."""
        return self.data_dir / "work"

    @property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.db"
