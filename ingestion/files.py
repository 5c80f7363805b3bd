"""The files of a source, found safely.

A source is a local file or directory (a git work tree lists only what git tracks or would
track, so ``.gitignore`` is respected), or the folder an upload was stored in. Zip archives are
read member by member and tar archives are unpacked by hand into the upload's folder, so no
path ever leaves the source: absolute and ``..`` names are refused, and symbolic links, device
files and other special entries are never followed or created.
"""

import os
import stat
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.config import IngestSettings
from ingestion.errors import FileExcluded, FileRejected

# Folders of third-party or build output code: never an expert's own corpus.
VENDORED_DIRS = frozenset(
    {
        "node_modules", "bower_components", "vendor", "third_party", "third-party", "external",
        "__pycache__", "venv", "site-packages", "dist", "build", "target", "out",
    }
)  # fmt: skip
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")
UNPACKED = ".unpacked"  # where tar archives of an upload are unpacked, beside them


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of a source. ``read`` raises FileRejected or FileExcluded with a reason."""

    source_key: str  # what identifies the source on a re-ingest ("local:/abs/dir", ...)
    path: str  # the document's path inside the source: POSIX style, relative
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


def is_archive(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(".zip") or lower.endswith(TAR_SUFFIXES)


def excluded_dir(parts: list[str]) -> str | None:
    """Why a file under these folders is left out, or None."""
    for part in parts:
        if part.startswith("."):
            return f"hidden folder {part}/"
        if part in VENDORED_DIRS:
            return f"vendored or build folder {part}/"
    return None


def _failing(source_key: str, path: str, error: Exception, size: int = 0) -> SourceFile:
    def read() -> bytes:
        raise error

    return SourceFile(source_key=source_key, path=path, size=size, read=read)


def _reader(path: Path, limit: int) -> Callable[[], bytes]:
    def read() -> bytes:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise FileExcluded(f"larger than the {limit} byte limit for one file")
        return data

    return read


def _git_files(root: Path) -> list[str] | None:
    """Files git tracks or would track under ``root`` (None when it is not a git work tree)."""
    try:
        inside = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if inside.stdout.strip() != "true":
            return None
        # A folder that the enclosing repository ignores (say, a data dir) is not its content.
        ignored = subprocess.run(
            ["git", "-C", str(root), "check-ignore", "-q", "."],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        if ignored.returncode == 0:
            return None
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return sorted({name for name in listed.stdout.decode().split("\0") if name})


def git_commit(root: Path) -> str | None:
    """The commit checked out at ``root``, or None (not a repository, or no commit yet)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _walk(root: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            yield (Path(dirpath) / filename).relative_to(root).as_posix()


def _local_files(
    root: Path, key: str, limits: IngestSettings, *, use_git: bool
) -> Iterator[SourceFile]:
    names = _git_files(root) if use_git else None
    for name in names if names is not None else _walk(root):
        full = root / name
        try:
            mode = full.lstat().st_mode
        except OSError:
            continue  # tracked by git but deleted from the work tree
        if not stat.S_ISREG(mode):
            continue  # symbolic links, sockets, devices: never followed
        parts = name.split("/")
        why = excluded_dir(parts[:-1]) or ("hidden file" if parts[-1].startswith(".") else None)
        if why:
            yield _failing(key, name, FileExcluded(why))
        elif is_archive(name):
            yield from _archive_members(full, key, name, limits)
        else:
            size = full.stat().st_size
            yield SourceFile(key, name, size, _reader(full, limits.max_file_bytes))


def _zip_members(archive: Path, key: str, limits: IngestSettings) -> Iterator[SourceFile]:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        yield _failing(key, archive.name, FileRejected(f"not a readable zip archive: {exc}"))
        return
    for info in infos:
        file_type = stat.S_IFMT(info.external_attr >> 16)
        if info.is_dir() or (file_type and file_type != stat.S_IFREG):
            continue  # folders, symbolic links and other special entries
        try:
            member = safe_relative_path(info.filename)
        except FileRejected as exc:
            yield _failing(key, info.filename, exc)
            continue
        why = excluded_dir(member.split("/")[:-1])
        if why:
            yield _failing(key, member, FileExcluded(why))
            continue

        def read(info: zipfile.ZipInfo = info) -> bytes:
            limit = limits.max_file_bytes
            with zipfile.ZipFile(archive) as zf, zf.open(info) as handle:
                data = handle.read(limit + 1)  # the header's size can lie
            if len(data) > limit:
                raise FileExcluded(f"larger than the {limit} byte limit for one file")
            return data

        yield SourceFile(key, member, info.file_size, read)


def unpack_tar(archive: Path, target: Path, limits: IngestSettings) -> list[tuple[str, str]]:
    """Unpack a tar archive's regular files into ``target``; returns (member, reason) refused.

    Written by hand rather than with ``extractall``: only regular files are created, only under
    ``target``, within the size limits.
    """
    refused: list[tuple[str, str]] = []
    total = 0
    count = 0
    with tarfile.open(archive) as tar:
        for member in tar:
            if not member.isreg():
                continue  # folders are created as needed; links and devices never
            count += 1
            total += member.size
            if count > limits.max_files or total > limits.max_unpacked_bytes:
                raise FileRejected(
                    f"unpacks to more than {limits.max_files} files or "
                    f"{limits.max_unpacked_bytes} bytes"
                )
            try:
                name = safe_relative_path(member.name)
            except FileRejected as exc:
                refused.append((member.name, exc.reason))
                continue
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                continue
            with source, destination.open("wb") as out:
                out.write(source.read(member.size))
    return refused


def _archive_members(
    archive: Path, key: str, name: str, limits: IngestSettings
) -> Iterator[SourceFile]:
    if name.lower().endswith(".zip"):
        yield from _zip_members(archive, key, limits)
        return
    target = archive.parent / UNPACKED / archive.name
    try:
        if not target.exists():
            refused = unpack_tar(archive, target, limits)
            (target / ".refused").write_text(
                "".join(f"{member}\t{reason}\n" for member, reason in refused)
            )
    except (tarfile.TarError, OSError, FileRejected) as exc:
        reason = exc.reason if isinstance(exc, FileRejected) else str(exc)
        yield _failing(key, name, FileRejected(f"not a readable tar archive: {reason}"))
        return
    for line in (target / ".refused").read_text().splitlines():
        member, reason = line.split("\t", 1)
        yield _failing(key, member, FileRejected(reason))
    for member in _walk(target):
        if member == ".refused":
            continue
        why = excluded_dir(member.split("/")[:-1])
        full = target / member
        if why:
            yield _failing(key, member, FileExcluded(why))
        else:
            yield SourceFile(key, member, full.stat().st_size, _reader(full, limits.max_file_bytes))


def local_source_files(root: Path, limits: IngestSettings) -> Iterator[SourceFile]:
    """A local file, directory or git work tree, all under one source key."""
    key = f"local:{root}"
    if root.is_file():
        if is_archive(root.name):
            yield from _archive_members(root, key, root.name, limits)
        else:
            yield SourceFile(
                key, root.name, root.stat().st_size, _reader(root, limits.max_file_bytes)
            )
        return
    yield from _local_files(root, key, limits, use_git=True)


def upload_source_files(folder: Path, limits: IngestSettings) -> Iterator[SourceFile]:
    """An upload's folder: each uploaded file or archive (or top folder) is its own source."""
    for entry in sorted(folder.iterdir()):
        if entry.name == UNPACKED:
            continue
        key = f"upload:{entry.name}"
        if entry.is_dir() and not entry.is_symlink():
            yield from _local_files(entry, key, limits, use_git=False)
        elif entry.is_file() and not entry.is_symlink():
            if is_archive(entry.name):
                yield from _archive_members(entry, key, entry.name, limits)
            else:
                yield SourceFile(
                    key, entry.name, entry.stat().st_size, _reader(entry, limits.max_file_bytes)
                )
