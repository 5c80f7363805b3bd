"""Expert profiles: what an expert says about themselves, checked, and the view others see.

Nothing here is verified: a profile is the expert's own words. What the platform checked lives
in credentials (``marketplace/credentials.py``)."""

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator, model_validator

from assets.schemas import TAG, TAG_INPUT
from core.patterns import NON_SPACE, NOT_BLANK, SPACE, documented
from marketplace.models import ExpertProfile

MAX_DOMAINS = 10
MAX_LINKS = 10
_ORCID = re.compile(
    r"^(?:https?://(?:www\.)?orcid\.org/)?([0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{3}[0-9X])$", re.I
)


def orcid_valid(orcid: str) -> bool:
    """True when the 16-character ORCID iD passes its ISO 7064 MOD 11-2 check digit."""
    digits = orcid.replace("-", "").upper()
    if len(digits) != 16 or not digits[:15].isdigit():
        return False
    total = 0
    for char in digits[:15]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    return digits[15] == ("X" if check == 10 else str(check))


def clean_orcid(value: str) -> str:
    """``"https://orcid.org/0000-0002-1825-0097"`` -> ``"0000-0002-1825-0097"``; else ValueError."""
    match = _ORCID.match(value.strip())
    if not match or not orcid_valid(match.group(1)):
        raise ValueError(
            f"{value!r} is not an ORCID iD: write it as 0000-0002-1825-0097 "
            "(16 digits in groups of four, the last may be X, with a valid check digit)"
        )
    return match.group(1).upper()


# Only web links: a javascript: or data: link would run in the visitor's browser.
_HOST = r"[^/?#\[\]@\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
LINK_INPUT = rf"^{SPACE}*[Hh][Tt][Tt][Pp][Ss]?://{_HOST}(?:[/?#]{NON_SPACE}*)?{SPACE}*$"
ORCID_INPUT = (
    rf"^{SPACE}*(?:(?:[Hh][Tt][Tt][Pp][Ss]?://(?:www\.)?orcid\.org/)?"
    rf"[0-9]{{4}}-[0-9]{{4}}-[0-9]{{4}}-[0-9]{{3}}[0-9Xx])?{SPACE}*$"
)
CURRENCY_INPUT = rf"^{SPACE}*[A-Za-z]{{3}}{SPACE}*$"


def _clean_link(value: str) -> str:
    if not re.search(LINK_INPUT, value):
        raise ValueError(
            f"link {value!r}: use a full http:// or https:// address of at most 500 characters"
        )
    return value.strip()


class ProfileUpdate(BaseModel):
    """A profile as the expert writes it; every field replaces the stored one."""

    name: str | None = Field(
        default=None,
        max_length=200,
        description="Your display name; unchanged when left out",
        json_schema_extra=documented(NOT_BLANK),
    )
    headline: str = Field(
        default="", max_length=200, examples=["GDPR counsel, 12 years in ad tech"]
    )
    bio: str = Field(default="", max_length=5000)
    domains: list[Annotated[str, Field(json_schema_extra=documented(TAG_INPUT))]] = Field(
        default_factory=list, max_length=MAX_DOMAINS, examples=[["gdpr", "privacy"]]
    )
    links: list[Annotated[str, Field(max_length=500, json_schema_extra=documented(LINK_INPUT))]] = (
        Field(default_factory=list, max_length=MAX_LINKS)
    )
    price_from: int | None = Field(default=None, ge=0, le=10**11, description="Minor units (cents)")
    price_to: int | None = Field(default=None, ge=0, le=10**11, description="Minor units (cents)")
    currency: str = Field(
        default="usd",
        description="ISO 4217, three letters",
        json_schema_extra=documented(CURRENCY_INPUT),
    )
    response_hours: int | None = Field(
        default=None, ge=1, le=24 * 90, description="How soon you usually answer"
    )
    orcid: str | None = Field(
        default=None,
        description="Your ORCID iD, matched against papers' authors; its check digit is checked",
        json_schema_extra={"format": "orcid", **documented(ORCID_INPUT)},
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = " ".join(value.split())
        if not name:
            raise ValueError("the name is blank")
        return name

    @field_validator("headline")
    @classmethod
    def _headline(cls, value: str) -> str:
        return " ".join(value.split())

    @field_validator("bio")
    @classmethod
    def _bio(cls, value: str) -> str:
        return value.strip()

    @field_validator("domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        domains = [v.strip().lower() for v in values if v.strip()]
        for domain in domains:
            if not TAG.match(domain):
                raise ValueError(
                    f"domain {domain!r}: use 1-32 lowercase letters, digits and dashes"
                )
        return list(dict.fromkeys(domains))

    @field_validator("links")
    @classmethod
    def _links(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(_clean_link(v) for v in values if v.strip()))

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        currency = value.strip().lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise ValueError(f"currency {value!r}: use a three-letter ISO code such as usd or eur")
        return currency

    @field_validator("orcid")
    @classmethod
    def _orcid(cls, value: str | None) -> str | None:
        return clean_orcid(value) if value and value.strip() else None

    @model_validator(mode="after")
    def _range(self) -> "ProfileUpdate":
        if (
            self.price_from is not None
            and self.price_to is not None
            and self.price_to < self.price_from
        ):  # a range written backwards means the same range
            self.price_from, self.price_to = self.price_to, self.price_from
        return self


def apply(profile: ExpertProfile, data: ProfileUpdate, *, now: datetime) -> ExpertProfile:
    """Write ``data`` (all but the name, which lives on the account) into ``profile``."""
    for name, value in data.model_dump(exclude={"name"}).items():
        setattr(profile, name, value)
    profile.updated_at = now
    return profile


def profile_view(profile: ExpertProfile, *, name: str) -> dict[str, Any]:
    """The profile as JSON, with the expert's name."""
    return {
        "account_id": profile.account_id,
        "name": name,
        "headline": profile.headline,
        "bio": profile.bio,
        "domains": list(profile.domains),
        "links": list(profile.links),
        "price_from": profile.price_from,
        "price_to": profile.price_to,
        "currency": profile.currency,
        "response_hours": profile.response_hours,
        "orcid": profile.orcid,
        "updated_at": profile.updated_at.isoformat(),
    }


# Names, compared the way papers write them


_PARTICLES = frozenset({
    "van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "dos", "das", "le",
    "la", "bin", "ibn", "al", "el", "ter", "ten", "y", "zu",
})  # fmt: skip


def name_tokens(name: str) -> list[str]:
    """Lower-case words without accents or punctuation; "Lovelace, Ada" becomes "ada lovelace"."""
    if name.count(",") == 1:
        family, given = name.split(",")
        name = f"{given} {family}"
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.findall(r"[^\W\d_]+", plain.replace("'", "").replace("\u2019", ""))


def _compatible(a: str, b: str) -> bool:
    """Two given names agree: equal, or one is the other's initial."""
    if len(a) == 1 or len(b) == 1:
        return a[0] == b[0]
    return a == b


def names_match(first: str, second: str) -> bool:
    """Whether two ways of writing a name can be one person: "Ada Lovelace", "A. Lovelace",
    "Lovelace, Ada", "Ada B. Lovelace" and "ADA LOVELACE" all match; a family name alone never
    does. The family names (last words) must be equal, and the given names of the shorter one
    must appear, in order, among the other's (a single letter stands for any name it starts)."""
    a, b = name_tokens(first), name_tokens(second)
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-1]:
        return False
    given_a = [t for t in a[:-1] if t not in _PARTICLES]
    given_b = [t for t in b[:-1] if t not in _PARTICLES]
    shorter, longer = sorted((given_a, given_b), key=len)
    if not shorter:
        return False
    position = 0
    for token in shorter:
        while position < len(longer) and not _compatible(token, longer[position]):
            position += 1
        if position == len(longer):
            return False
        position += 1
    return True
