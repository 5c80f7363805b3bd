"""Response shapes of credentials, signing keys, expert profiles and the catalog. Money is in
minor units (cents); times are ISO 8601 strings."""

from typing import Any

from pydantic import BaseModel, Field

# What a credential's evidence and check figures hold depends on its kind and method
# (marketplace/credentials.py): a git remote and commit counts, a DOI and authors, a document.
Evidence = dict[str, Any]
Figures = dict[str, Any]


class CredentialView(BaseModel):
    """Everything about a credential, for its expert and admins."""

    id: str
    account_id: str
    kind: str = Field(
        examples=["commit_authorship", "paper_authorship", "certification", "licence"]
    )
    claim: str
    domain: str | None
    status: str = Field(examples=["unverified", "verified", "rejected", "expired"])
    method: str | None = Field(examples=["git_history", "paper_authors", "doi", "admin_review"])
    evidence: Evidence
    figures: Figures = Field(description="What the check found")
    note: str = Field(description="The check's outcome in a sentence, or the admin's note")
    verified_by: str | None
    verified_at: str | None
    expires_at: str | None
    created_at: str


class CredentialExpert(BaseModel):
    id: str
    name: str
    email: str
    email_verified: bool = Field(description="Only then can a credential be verified")


class CredentialReview(CredentialView):
    """A credential with its expert, for the admin's review."""

    expert: CredentialExpert


class PublicCredential(BaseModel):
    """What anyone sees of a credential."""

    id: str
    kind: str
    claim: str
    domain: str | None
    status: str
    method: str | None
    evidence: Evidence = Field(description="The public parts: remote, asset, doi, issuer")
    figures: Figures
    note: str
    verified_at: str | None
    expires_at: str | None


class SigningKeyPublic(BaseModel):
    id: str
    kind: str = Field(examples=["ssh", "gpg"])
    fingerprint: str
    label: str
    public_key: str
    created_at: str


class ProfilePublic(BaseModel):
    account_id: str
    name: str
    headline: str
    bio: str
    domains: list[str]
    links: list[str]
    price_from: int | None = Field(description="Typical engagement, minor units")
    price_to: int | None
    currency: str
    response_hours: int | None
    orcid: str | None = Field(description="As typed in; `orcid_proved` is the one proved")
    updated_at: str


class ExpertAsset(BaseModel):
    slug: str
    title: str
    tags: list[str]


class ExpertPage(BaseModel):
    """An expert as anyone sees them."""

    profile: ProfilePublic
    assets: list[ExpertAsset] = Field(description="Published assets, newest first")
    orcid_proved: str | None = Field(description="The ORCID iD proved through ORCID's sign-in")
    credentials: list[PublicCredential] = Field(description="Live ones, oldest first")


class CatalogCredential(BaseModel):
    id: str
    kind: str
    claim: str
    domain: str | None
    method: str | None
    figures: Figures
    verified_at: str | None


class CatalogExpert(BaseModel):
    account_id: str
    name: str
    headline: str
    domains: list[str]
    price_from: int | None
    price_to: int | None
    currency: str
    response_hours: int | None
    quality: float | None = Field(description="Their best published asset's score")
    assets: list[str] = Field(description="Slugs of their published assets")
    verified_credentials: list[CatalogCredential]
    url: str


class CatalogInterval(BaseModel):
    """The quality score's 95% interval."""

    low: float
    high: float


class CatalogAssetExpert(BaseModel):
    account_id: str
    name: str
    headline: str
    response_hours: int | None
    verified_domains: list[str]
    url: str


class CatalogAsset(BaseModel):
    slug: str
    title: str
    description: str
    tags: list[str]
    per_query: int | None
    monthly: int | None
    currency: str
    quality: float | None
    quality_interval: CatalogInterval | None = Field(description="The score's 95% interval")
    quality_n: int = Field(description="Measured answers the score rests on")
    created_at: str
    expert: CatalogAssetExpert
    url: str
