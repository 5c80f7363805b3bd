"""Finding a source's files and turning each into chunks.

A source is a local file or directory, or the folder an upload was stored in; zip archives in it
are read member by member without extracting anything to disk. Hidden folders, dependency and
cache folders and symbolic links are never followed.
"""

import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ingestion.errors import FileRejected
from ingestion.sources.base import Chunk
from ingestion.sources.code import chunk_python
from ingestion.sources.text import chunk_markdown, chunk_text

KINDS = ("auto", "code", "text")
TEXT_SUFFIXES = {".md": chunk_markdown, ".markdown": chunk_markdown, ".txt": chunk_text}
CODE_SUFFIXES = {".py": chunk_python}
SUPPORTED = sorted([*TEXT_SUFFIXES, *CODE_SUFFIXES])
SKIP_DIRS = {"node_modules", "__pycache__", "venv", "site-packages", "dist", "build"}


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str  # the document's path inside the asset, POSIX style, relative
    size: int
    read: Callable[[], bytes]


def safe_relative_path(name: str) -> str:
    """``name`` as a clean relative POSIX path; raises FileRejected for absolute or ``..`` paths."""
    cleaned = name.replace("\\", "/")
    pure = PurePosixPath(cleaned)
    if cleaned.startswith("/") or (pure.parts and pure.parts[0].endswith(":")):
        raise FileRejected("absolute paths are not allowed")
    parts = [part for part in pure.parts if part not in ("", ".")]
    if ".." in parts:
        raise FileRejected("paths may not contain '..'")
    if not parts:
        raise FileRejected("empty file name")
    return "/".join(parts)


def _skipped_dir(name: str) -> bool:
    return name.startswith(".") or name in SKIP_DIRS


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _skipped_dir(d))
        for filename in sorted(filenames):
            full = Path(dirpath) / filename
            if filename.startswith(".") or not stat.S_ISREG(full.lstat().st_mode):
                continue  # hidden files, symbolic links, sockets, devices
            yield full.relative_to(root).as_posix(), full


def _rejected(path: str, reason: str, size: int = 0) -> SourceFile:
    def read() -> bytes:
        raise FileRejected(reason)

    return SourceFile(path=path, size=size, read=read)


def _zip_members(archive: Path, name: str, max_file_bytes: int) -> Iterator[SourceFile]:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        yield _rejected(name, f"not a readable zip archive: {exc}")
        return
    for info in infos:
        if info.is_dir():
            continue
        file_type = stat.S_IFMT(info.external_attr >> 16)
        if file_type and file_type != stat.S_IFREG:
            continue  # symbolic links and other special entries (no type bits: a plain file)
        try:
            member = safe_relative_path(info.filename)
        except FileRejected as exc:
            yield _rejected(f"{name}:{info.filename}", exc.reason)
            continue
        if any(_skipped_dir(part) for part in member.split("/")[:-1]):
            continue

        def read(info: zipfile.ZipInfo = info) -> bytes:
            with zipfile.ZipFile(archive) as zf, zf.open(info) as handle:
                # The header's size can lie; never read more than the limit allows.
                data = handle.read(max_file_bytes + 1)
            if len(data) > max_file_bytes:
                raise FileRejected(f"larger than the {max_file_bytes} byte limit for one file")
            return data

        yield SourceFile(path=member, size=info.file_size, read=read)


def iter_source_files(root: Path, *, max_file_bytes: int) -> Iterator[SourceFile]:
    """Every file of a source: a single file, or a directory walked in name order."""
    if root.is_file():
        entries: Iterator[tuple[str, Path]] = iter([(root.name, root)])
    else:
        entries = _walk(root)
    for name, full in entries:
        if full.suffix.lower() == ".zip":
            yield from _zip_members(full, name, max_file_bytes)
        else:
            yield SourceFile(path=name, size=full.stat().st_size, read=full.read_bytes)


def decode(data: bytes) -> str:
    """UTF-8 text (a BOM is dropped); binary or undecodable content is rejected with its offset."""
    if b"\x00" in data[:8192]:
        raise FileRejected("binary content (NUL bytes), not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileRejected(
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at line {line}, offset {exc.start}"
        ) from exc


def chunker_for(path: str, kind: str) -> tuple[str, Callable[[str, str], list[Chunk]]]:
    """The document kind and chunker for a path under the requested kind."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix not in TEXT_SUFFIXES and suffix not in CODE_SUFFIXES:
        shown = suffix or "no extension"
        raise FileRejected(f"unsupported file type ({shown}); supported: {', '.join(SUPPORTED)}")
    if kind == "text":
        return "text", TEXT_SUFFIXES.get(suffix, chunk_text)
    if suffix in CODE_SUFFIXES:
        return "code", CODE_SUFFIXES[suffix]
    if kind == "code":
        raise FileRejected(f"no code parser for {suffix} files; ingest them with kind auto or text")
    return "text", TEXT_SUFFIXES[suffix]


def is_supported(path: str) -> bool:
    suffix = PurePosixPath(path).suffix.lower()
    return suffix in TEXT_SUFFIXES or suffix in CODE_SUFFIXES or suffix == ".zip"
