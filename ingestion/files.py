"""The files of a source, found safely.

A source is a local file or directory (a git work tree lists only what git tracks or would
track, so ``.gitignore`` is respected), or the folder an upload was stored in. Zip archives are
read member by member. Tar archives are unpacked by hand into the job's work folder under the
data dir, never beside the source: each member to a numbered file of its own, so no name from
an archive is ever used as a path on disk. Absolute and ``..`` names are refused by name;
symbolic links, hard links, device files and other special entries are listed as left out
(a link with where it points) and never followed or created.
"""

import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
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
log = logging.getLogger(__name__)

# A link's target is shown in the job's report; a zip stores it as the entry's content.
_LINK_TARGET_CHARS = 200


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of a source. ``read`` raises FileRejected or FileExcluded with a reason."""

    source_key: str  # what identifies the source on a re-ingest ("local:/abs/dir", ...)
    path: str  # the document's path inside the source: POSIX style, relative
    size: int
    read: Callable[[], bytes]
    on_disk: Path  # the file it comes from: itself, or the archive that holds it


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


def too_large(size: int, limit: int) -> FileExcluded:
    return FileExcluded(f"{size} bytes, over the {limit} byte limit")


def link_excluded(kind: str, target: str) -> FileExcluded:
    """A link left out, saying where it points (``kind``: "symbolic link" or "hard link")."""
    shown = target if len(target) <= _LINK_TARGET_CHARS else target[:_LINK_TARGET_CHARS] + "..."
    return FileExcluded(f"{kind} to {shown}: links are not followed")


def _special_excluded(what: str) -> FileExcluded:
    return FileExcluded(f"{what}: not a regular file")


def _failing(
    source_key: str, path: str, error: Exception, on_disk: Path, size: int = 0
) -> SourceFile:
    def read() -> bytes:
        raise error

    return SourceFile(source_key, path, size, read, on_disk)


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
    """Everything under ``root`` but its real folders: files, special files and links (a link
    to a folder too, which is listed, not descended into)."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        links = [name for name in dirnames if (here / name).is_symlink()]
        dirnames[:] = sorted(name for name in dirnames if name not in links)
        for filename in sorted(filenames + links):
            yield (here / filename).relative_to(root).as_posix()


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    return "special file"


def _local_files(
    root: Path, key: str, limits: IngestSettings, work: Path, *, use_git: bool
) -> Iterator[SourceFile]:
    names = _git_files(root) if use_git else None
    for name in names if names is not None else _walk(root):
        full = root / name
        try:
            info = full.lstat()
        except OSError:
            continue  # tracked by git but deleted from the work tree
        parts = name.split("/")
        why = excluded_dir(parts[:-1]) or ("hidden file" if parts[-1].startswith(".") else None)
        if why:
            yield _failing(key, name, FileExcluded(why), full)
        elif stat.S_ISLNK(info.st_mode):
            yield _failing(key, name, link_excluded("symbolic link", os.readlink(full)), full)
        elif not stat.S_ISREG(info.st_mode):
            yield _failing(key, name, _special_excluded(_special_kind(info.st_mode)), full)
        elif is_archive(name):
            yield from _archive_members(full, key, name, limits, work)
        else:
            yield SourceFile(key, name, info.st_size, _reader(full, limits.max_file_bytes), full)


def _member_path(name: str, key: str, archive: Path) -> str | SourceFile:
    """An archive entry's clean path, or the entry refused or left out by its name."""
    try:
        path = safe_relative_path(name)
    except FileRejected as exc:
        return _failing(key, name, exc, archive)  # reported under the name the archive gives
    why = excluded_dir(path.split("/")[:-1])
    if why:
        return _failing(key, path, FileExcluded(why), archive)
    return path


def _too_many(limits: IngestSettings) -> FileRejected:
    return FileRejected(
        f"unpacks to more than {limits.max_files} files or {limits.max_unpacked_bytes} bytes"
    )


def _zip_folder(info: zipfile.ZipInfo) -> bool:
    return info.is_dir() or stat.S_IFMT(info.external_attr >> 16) == stat.S_IFDIR


def _zip_link_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    try:
        with zf.open(info) as handle:
            raw = handle.read(_LINK_TARGET_CHARS * 4)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, zlib.error):
        return "an unreadable target"
    return raw.decode("utf-8", errors="replace")


def _zip_members(
    archive: Path, key: str, name: str, limits: IngestSettings
) -> Iterator[SourceFile]:
    entries: dict[str, SourceFile] = {}  # by path: a name repeated in an archive counts once
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = [info for info in zf.infolist() if not _zip_folder(info)]
            if len(infos) > limits.max_files:
                yield _failing(key, name, _too_many(limits), archive)
                return
            for info in infos:
                path = _member_path(info.filename, key, archive)
                if isinstance(path, SourceFile):
                    entries[path.path] = path
                    continue
                file_type = stat.S_IFMT(info.external_attr >> 16)
                if file_type == stat.S_IFLNK:
                    error = link_excluded("symbolic link", _zip_link_target(zf, info))
                    entries[path] = _failing(key, path, error, archive)
                elif file_type and file_type != stat.S_IFREG:
                    error = _special_excluded(_special_kind(file_type))
                    entries[path] = _failing(key, path, error, archive)
                else:
                    entries[path] = _zip_file(archive, info, key, path, limits)
    except (zipfile.BadZipFile, OSError) as exc:
        yield _failing(key, name, FileRejected(f"not a readable zip archive: {exc}"), archive)
        return
    yield from entries.values()


def _zip_file(
    archive: Path, info: zipfile.ZipInfo, key: str, path: str, limits: IngestSettings
) -> SourceFile:
    def read() -> bytes:
        limit = limits.max_file_bytes
        with zipfile.ZipFile(archive) as zf, zf.open(info) as handle:
            data = handle.read(limit + 1)  # the header's size can lie
        if len(data) > limit:
            raise FileExcluded(f"larger than the {limit} byte limit for one file")
        return data

    return SourceFile(key, path, info.file_size, read, archive)


_TAR_SPECIAL = {
    tarfile.CHRTYPE: "device file",
    tarfile.BLKTYPE: "device file",
    tarfile.FIFOTYPE: "named pipe",
}


def unpack_tar(archive: Path, target: Path, key: str, limits: IngestSettings) -> list[SourceFile]:
    """The entries of a tar archive, its regular files unpacked into ``target``.

    Written by hand rather than with ``extractall``: each regular file within the size limits
    is written to a numbered file directly in ``target``, whatever its name; links, devices
    and unsafe names come back as entries that say why they were refused or left out. Raises
    FileRejected when the archive holds too many files or bytes.
    """
    entries: dict[str, SourceFile] = {}  # by path: the last entry of a repeated name wins
    count = total = 0
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isdir():
                continue  # folders exist only as parts of their files' paths
            count += 1
            total += member.size if member.isreg() else 0
            if count > limits.max_files or total > limits.max_unpacked_bytes:
                raise _too_many(limits)
            path = _member_path(member.name, key, archive)
            if isinstance(path, SourceFile):
                entries[path.path] = path
                continue
            if member.issym():
                error = link_excluded("symbolic link", member.linkname)
            elif member.islnk():
                error = link_excluded("hard link", member.linkname)
            elif not member.isreg():
                error = _special_excluded(_TAR_SPECIAL.get(member.type, "special file"))
            elif member.size > limits.max_file_bytes:
                error = too_large(member.size, limits.max_file_bytes)
            else:
                destination = target / str(count)
                source = tar.extractfile(member)
                assert source is not None  # a regular member always has content
                with source, destination.open("wb") as out:
                    shutil.copyfileobj(source, out)
                reader = _reader(destination, limits.max_file_bytes)
                entries[path] = SourceFile(key, path, member.size, reader, archive)
                continue
            entries[path] = _failing(key, path, error, archive, member.size)
    return list(entries.values())


def _archive_members(
    archive: Path, key: str, name: str, limits: IngestSettings, work: Path
) -> Iterator[SourceFile]:
    if name.lower().endswith(".zip"):
        yield from _zip_members(archive, key, name, limits)
        return
    # One folder per archive of the job, named by the archive's place in its source.
    target = work / hashlib.sha256(f"{key}\x00{name}".encode()).hexdigest()[:16]
    try:
        entries = unpack_tar(archive, target, key, limits)
    except FileRejected as exc:
        yield _failing(key, name, exc, archive)
        return
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        yield _failing(key, name, FileRejected(f"not a readable tar archive: {exc}"), archive)
        return
    yield from entries


def local_source_files(root: Path, limits: IngestSettings, *, work: Path) -> Iterator[SourceFile]:
    """A local file, directory or git work tree, all under one source key; tar archives are
    unpacked under ``work``."""
    key = f"local:{root}"
    if root.is_file():
        if is_archive(root.name):
            yield from _archive_members(root, key, root.name, limits, work)
        else:
            size = root.stat().st_size
            yield SourceFile(key, root.name, size, _reader(root, limits.max_file_bytes), root)
        return
    yield from _local_files(root, key, limits, work, use_git=True)


def upload_source_files(
    folder: Path, limits: IngestSettings, *, work: Path
) -> Iterator[SourceFile]:
    """An upload's folder: each uploaded file or archive (or top folder) is its own source;
    tar archives are unpacked under ``work``."""
    for entry in sorted(folder.iterdir()):
        key = f"upload:{entry.name}"
        if entry.is_dir() and not entry.is_symlink():
            yield from _local_files(entry, key, limits, work, use_git=False)
        elif entry.is_file() and not entry.is_symlink():
            if is_archive(entry.name):
                yield from _archive_members(entry, key, entry.name, limits, work)
            else:
                reader = _reader(entry, limits.max_file_bytes)
                yield SourceFile(key, entry.name, entry.stat().st_size, reader, entry)


def discard_upload_files(folder: Path, files: Iterable[Path]) -> None:
    """Delete these files of an upload's folder, then the folders that left empty (the upload's
    own folder too); a path outside the folder is left alone."""
    for path in files:
        if path == folder or not path.is_relative_to(folder):
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # the job has ended: a file that stays is no reason to fail it
            log.warning("could not delete %s of an upload: %s", path, exc)
            continue
        parent = path.parent
        while parent.is_relative_to(folder):
            try:
                parent.rmdir()
            except OSError:  # not empty
                break
            parent = parent.parent
