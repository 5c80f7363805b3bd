"""Real git repositories made in a test, with commits under chosen authors."""

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Commit:
    email: str
    files: dict[str, str]  # path -> full new content
    name: str = "Someone"


def _git(repo: Path, *args: str, email: str = "x@example.com", name: str = "X") -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo.parent)}
    result = subprocess.run(
        ["git", "-c", f"user.email={email}", "-c", f"user.name={name}",
         "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
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
        _git(path, "commit", "-q", "-m", f"change {i}", email=commit.email, name=commit.name)
    return _git(path, "rev-parse", "HEAD")


def git(path: Path, *args: str, email: str = "x@example.com") -> str:
    """Run another git command in the repository (branch, merge, ...)."""
    return _git(path, *args, email=email)


def lines(n: int, word: str = "line") -> str:
    return "".join(f"{word} {i}\n" for i in range(n))
