"""Real git repositories made in a test, with commits under chosen authors."""

import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GpgKey:
    """A throwaway OpenPGP key pair in its own GNUPGHOME."""

    home: Path
    fingerprint: str
    public: str  # ASCII-armoured, as ``gpg --armor --export`` prints it


@dataclass(frozen=True)
class Commit:
    email: str
    files: dict[str, str]  # path -> full new content
    name: str = "Someone"
    # An SSH private key file, or an OpenPGP key: the commit is signed with it.
    signing_key: Path | GpgKey | None = None


def _git(
    repo: Path,
    *args: str,
    email: str = "x@example.com",
    name: str = "X",
    signing_key: Path | GpgKey | None = None,
) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo.parent)}
    if isinstance(signing_key, GpgKey):
        env["GNUPGHOME"] = str(signing_key.home)
        sign = ["-c", "commit.gpgsign=true", "-c", "gpg.format=openpgp", "-c",
                "gpg.program=gpg", "-c", f"user.signingkey={signing_key.fingerprint}"]  # fmt: skip
    elif signing_key:
        sign = ["-c", "commit.gpgsign=true", "-c", "gpg.format=ssh", "-c",
                f"user.signingkey={signing_key}"]  # fmt: skip
    else:
        sign = ["-c", "commit.gpgsign=false"]
    result = subprocess.run(
        ["git", "-c", f"user.email={email}", "-c", f"user.name={name}", *sign,
         "-c", "init.defaultBranch=main", *args],
        cwd=repo, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def make_repo(path: Path, commits: list[Commit]) -> str:
    """A work tree at ``path`` with ``commits`` in order; returns the head commit."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q")
    for i, commit in enumerate(commits):
        for name, content in commit.files.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        _git(path, "add", "-A")
        _git(
            path,
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            f"change {i}",
            email=commit.email,
            name=commit.name,
            signing_key=commit.signing_key,
        )
    return _git(path, "rev-parse", "HEAD")


def git(path: Path, *args: str, email: str = "x@example.com") -> str:
    """Run another git command in the repository (branch, merge, ...)."""
    return _git(path, *args, email=email)


def lines(n: int, word: str = "line") -> str:
    return "".join(f"{word} {i}\n" for i in range(n))


def ssh_key(folder: Path, name: str = "id_ed25519") -> tuple[Path, str]:
    """A new SSH key pair in ``folder``: the private key's path and the public key's text."""
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test key", "-f", str(private)],
        check=True, capture_output=True,
    )  # fmt: skip
    return private, (folder / f"{name}.pub").read_text().strip()


@contextmanager
def gpg_key(home: Path, uid: str = "Expert <x@example.org>") -> Iterator[GpgKey]:
    """A new OpenPGP signing key (ed25519, no passphrase) in ``home``; its gpg-agent is
    stopped at the end."""
    home.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--passphrase", ""]
    try:
        subprocess.run(
            [*gpg, "--quick-gen-key", uid, "ed25519", "sign", "never"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        listed = subprocess.run(
            [*gpg, "--with-colons", "--list-keys"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        fingerprint = next(r.split(":")[9] for r in listed.splitlines() if r.startswith("fpr:"))
        public = subprocess.run(
            [*gpg, "--armor", "--export", fingerprint],
            env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        yield GpgKey(home, fingerprint, public)
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, check=False)


@dataclass
class Gate:
    """Holds a served repository's requests until released: ``reached`` is set when the first
    one arrives, and every request waits for ``release``."""

    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    # Only so that a test that never releases cannot hang the run.
    limit_seconds: float = 120.0


class _Quiet(SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, gate: Gate | None = None, **kwargs: Any) -> None:
        self.gate = gate
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if self.gate is not None:
            self.gate.reached.set()
            self.gate.release.wait(self.gate.limit_seconds)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class GitServer:
    """Bare repositories served over git's dumb HTTP protocol from ``root``."""

    root: Path
    base: str  # http://127.0.0.1:port

    def publish(self, work_tree: Path, name: str) -> str:
        """Put (or replace) a bare copy of ``work_tree`` at ``name``; returns its URL."""
        bare = self.root / f"{name}.git"
        shutil.rmtree(bare, ignore_errors=True)
        subprocess.run(
            ["git", "clone", "-q", "--bare", str(work_tree), str(bare)],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
        return f"{self.base}/{name}.git"


@contextmanager
def git_server(root: Path, *, gate: Gate | None = None) -> Iterator[GitServer]:
    """A static HTTP server on 127.0.0.1 over ``root``: git clones from it like any host.
    With a ``gate``, each request waits until the gate is released (a slow host)."""
    root.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_Quiet, directory=str(root), gate=gate)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield GitServer(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        if gate is not None:
            gate.release.set()
        server.shutdown()
        server.server_close()
