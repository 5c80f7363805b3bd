"""Public git repositories the platform fetches itself, so that a commit authorship check reads
history nobody handed it: a bare mirror per URL under the data dir, refreshed before each check.

Only ``https://``, ``http://`` and ``git://`` URLs without credentials are fetched. The host must
resolve to public addresses (unless ``allow_private``, for tests and closed installs), and git is
pinned to the address checked (``http.curloptResolve``), follows no redirect, asks for no
password, reads no user or system config, and may use no other transport (no ``file://``,
``ext::`` or ssh, e.g. through submodules)."""

import fcntl
import hashlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

SCHEMES = {"https": 443, "http": 80, "git": 9418}
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# The URLs fetched, as a pattern (the API's document states it): a host name or IPv4 address,
# an optional port, a path without spaces, control characters, query or fragment.
URL = (
    rf"(?:[Hh][Tt][Tt][Pp][Ss]?|[Gg][Ii][Tt])://[A-Za-z0-9](?:[A-Za-z0-9.-]{{0,252}})"
    rf"(?::{_PORT})?(?:/[^\s?#\x00-\x1f\x7f]*)?"
)
_URL = re.compile(rf"^{URL}$")
REF = r"[A-Za-z0-9_+][A-Za-z0-9._/+-]{0,199}"
_REF = re.compile(rf"^{REF}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


class RemoteRefused(Exception):
    """The URL is not one the platform fetches (scheme, credentials, a private address)."""


class RemoteUnavailable(Exception):
    """The repository could not be fetched now (unreachable, not git, too slow, no such ref)."""


def clean_url(url: str) -> str:
    """The URL as stored, or ValueError saying what to give instead."""
    url = url.strip()
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("the repository URL contains spaces or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"{url!r}: give the repository's public https:// (or http://, git://) URL; local "
            "paths, file:// and ssh addresses are not fetched"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("the repository URL must not carry a user name or password")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} has an invalid port") from exc
    if not host:
        raise ValueError(f"{url!r} names no host")
    if parts.query or parts.fragment:
        raise ValueError("the repository URL must not have a query (?) or fragment (#)")
    if port == 0 or not _URL.match(url):
        raise ValueError(
            f"{url!r} is not a repository URL such as https://git.example.org/team/project.git"
        )
    return f"{scheme}://{parts.netloc}{parts.path}"


def clean_ref(ref: str) -> str:
    """A branch or tag name, or a full commit id; ValueError otherwise."""
    ref = ref.strip()
    # Anything else git cannot name ("a..b", "x.lock") is simply not found in the mirror.
    if not _REF.match(ref):
        raise ValueError(f"{ref!r} is not a branch or tag name, nor a full commit id")
    return ref


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(url: str, *, allow_private: bool) -> tuple[str, int, str]:
    """The host, port and one checked address git will connect to; RemoteRefused for a host
    that is (or resolves to) a private, loopback or link-local address."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or SCHEMES[parts.scheme]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RemoteUnavailable(f"the host {host} cannot be resolved") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise RemoteUnavailable(f"the host {host} cannot be resolved")
    if not allow_private and not all(_public(a) for a in addresses):
        raise RemoteRefused(
            f"{host} is a private, loopback or link-local address; give the repository's public URL"
        )
    return host, port, addresses[0]


def mirror_path(remotes: Path, url: str) -> Path:
    return remotes / hashlib.sha256(url.encode()).hexdigest()


def _git(args: list[str], *, pin: str | None, timeout: float, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
    }
    safety = [
        "-c", "protocol.allow=never",
        "-c", "protocol.https.allow=always",
        "-c", "protocol.http.allow=always",
        "-c", "protocol.git.allow=always",
        "-c", "protocol.file.allow=never",
        "-c", "http.followRedirects=false",
        "-c", "credential.helper=",
        "-c", "core.askPass=/bin/false",
    ]  # fmt: skip
    if pin:
        safety += ["-c", f"http.curloptResolve={pin}"]
    try:
        result = subprocess.run(
            ["git", *safety, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise RemoteUnavailable("git is not installed on this server") from exc
    except subprocess.TimeoutExpired as exc:
        raise RemoteUnavailable(f"fetching the repository took longer than {timeout:g} s") from exc
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else "git failed"
        raise RemoteUnavailable(f"git could not fetch it: {reason.removeprefix('fatal: ')}")
    return result.stdout.strip()


def fetch(
    url: str, *, remotes: Path, ref: str | None, timeout: float, allow_private: bool
) -> tuple[Path, str]:
    """Clone (once) or refresh the bare mirror of ``url`` and return it with the commit to
    check: ``ref`` (a branch, tag or commit id) or the default branch's head."""
    host, port, address = resolve(url, allow_private=allow_private)
    shown = f"[{address}]" if ":" in address else address
    pin = f"{host}:{port}:{shown}" if url.startswith("http") else None
    mirror = mirror_path(remotes, url)
    remotes.mkdir(parents=True, exist_ok=True)
    with open(f"{mirror}.lock", "w") as lock:
        # One fetch per mirror at a time: two at once would fight over its ref locks.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (mirror / "HEAD").is_file():
            _git(["--git-dir", str(mirror), "fetch", "--prune", "--quiet", "origin"], pin=pin,
                 timeout=timeout)  # fmt: skip
        else:
            shutil.rmtree(mirror, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(prefix="clone-", dir=remotes))
            try:
                _git(["clone", "--mirror", "--quiet", "--", url, str(staging / "git")], pin=pin,
                     timeout=timeout)  # fmt: skip
                (staging / "git").rename(mirror)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    names = [ref] if ref and _HEX40.match(ref) else (
        [f"refs/heads/{ref}", f"refs/tags/{ref}"] if ref else ["HEAD"]
    )  # fmt: skip
    for name in names:
        try:
            commit = _git(
                [
                    "--git-dir",
                    str(mirror),
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    f"{name}^{{commit}}",
                ],
                pin=None,
                timeout=timeout,
            )
        except RemoteUnavailable:
            continue
        if _HEX40.match(commit):
            return mirror, commit
    raise RemoteUnavailable(
        f"the repository has no branch, tag or commit {ref!r}" if ref else "the repository is empty"
    )
