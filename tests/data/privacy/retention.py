"""How long the records of processing activities are kept."""

from datetime import timedelta

# Records are kept for their time to live (TTL): five years after the processing ends.
RECORDS_TTL = timedelta(days=5 * 365)


def expired(age: timedelta) -> bool:
    """Whether a record has outlived its TTL and must be erased."""
    return age > RECORDS_TTL
