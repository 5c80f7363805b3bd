"""Fetch the corpus of the CODE answer set: urllib3 2.8.0 from PyPI, unpacked as ``urllib3/``.

    python bench/corpora/code/fetch.py [DEST]

DEST defaults to /tmp/vouch-corpora/code and must lie outside this repository (the corpus is
not committed). pip downloads the pinned wheel, its sha256 is checked against the one below,
and the wheel's ``urllib3/`` folder (the package source; the wheel has no tests) is unpacked to
``DEST/urllib3``. Ingest that folder, so that locators read ``util/retry.py`` as
evals/datasets/answers/code.jsonl expects::

    vouch ingest code DEST/urllib3 --wait

See SOURCE.md beside this file for the package, its licence and its hash.
"""

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[3]
DEST = Path("/tmp/vouch-corpora/code")
PACKAGE = "urllib3"
VERSION = "2.8.0"
WHEEL = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
SHA256 = "0cf3cae568d36aa9576b28dfb35f11328f1cb974ca7647d9475ebb86c75ac6e3"
FOLDER = "urllib3"  # the folder of the wheel that is the corpus


def download(into: Path) -> Path:
    """The pinned wheel, downloaded by pip into ``into``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"{PACKAGE}=={VERSION}",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--dest",
        str(into),
        "--quiet",
    ]
    subprocess.run(command, check=True)
    wheel = into / WHEEL
    if not wheel.is_file():
        found = ", ".join(sorted(p.name for p in into.iterdir())) or "nothing"
        raise SystemExit(f"pip did not download {WHEEL} (found {found})")
    return wheel


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack(wheel: Path, dest: Path) -> list[Path]:
    """Extract the wheel's ``FOLDER/`` into ``dest``, replacing an earlier copy."""
    target = dest / FOLDER
    if target.exists():
        shutil.rmtree(target)
    written: list[Path] = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if info.is_dir() or not name.parts or name.parts[0] != FOLDER:
                continue
            if name.is_absolute() or ".." in name.parts:
                raise SystemExit(f"{wheel.name}: unsafe member path {info.filename!r}")
            out = dest.joinpath(*name.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(archive.read(info))
            written.append(out)
    if not written:
        raise SystemExit(f"{wheel.name} has no {FOLDER}/ folder")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "dest", nargs="?", type=Path, default=DEST, help=f"where to unpack (default {DEST})"
    )
    args = parser.parse_args()
    dest: Path = args.dest.resolve()
    if dest == REPO or REPO in dest.parents:
        raise SystemExit(f"{dest} is inside the repository; the corpus is not committed")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vouch-code-corpus-") as scratch:
        wheel = download(Path(scratch))
        digest = sha256(wheel)
        if digest != SHA256:
            raise SystemExit(f"{wheel.name}: sha256 {digest}, expected {SHA256}")
        files = unpack(wheel, dest)
    lines = sum(len(path.read_bytes().splitlines()) for path in files)
    print(f"{PACKAGE} {VERSION}: {len(files)} files, {lines} lines in {dest / FOLDER}")
    print(f"ingest it with: vouch ingest ASSET {dest / FOLDER} --wait")


if __name__ == "__main__":
    main()
