"""Files a process writes under its data dir that every other process may need to read (a
report PDF, a credential's document): kept in the database too, and copied back into the data
dir of a process that lacks them, so replicas on separate machines serve the same files."""

from datetime import datetime
from pathlib import Path

from sqlalchemy import Column, LargeBinary, delete
from sqlmodel import Field, Session, SQLModel, col

from core.clock import utcnow
from core.db import UTCDateTime


class StoredFile(SQLModel, table=True):
    __tablename__ = "stored_file"

    # Relative to the data dir, e.g. engagements/<id>/<name>.pdf
    path: str = Field(primary_key=True, max_length=300)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def keep(session: Session, data_dir: Path, path: str, data: bytes) -> Path:
    """Write ``data`` at ``data_dir/path`` and into the database, in the session's transaction."""
    target = data_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    session.merge(StoredFile(path=path, data=data))
    return target


def local(session: Session, data_dir: Path, path: str) -> Path | None:
    """The file at ``data_dir/path``, copied from the database first if this process has not
    got it; None when it is stored nowhere (or ``path`` leaves the data dir)."""
    root = data_dir.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        return None
    if target.is_file():
        return target
    row = session.get(StoredFile, path)
    if row is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(row.data)
    partial.replace(target)
    return target


def forget(session: Session, prefix: str, *, keep_path: str | None = None) -> None:
    """Delete the stored files under ``prefix`` (but ``keep_path``) from the database."""
    statement = delete(StoredFile).where(col(StoredFile.path).startswith(prefix, autoescape=True))
    if keep_path is not None:
        statement = statement.where(col(StoredFile.path) != keep_path)
    session.execute(statement)
