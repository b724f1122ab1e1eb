"""OpenPGP encryption to the mail house's armored public key, with the real `gpg`.

gpg runs with a private, temporary GNUPGHOME (`--recipient-file`, nothing imported), so the user's own
keyring is never read or changed, and its agent is stopped afterwards. Data streams through gpg's stdout
in chunks: memory stays constant, and the bytes are hashed as they are written.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from directmail.writer import StagedFile

CHUNK = 1 << 20


class KeyProblem(ValueError):
    """The public key cannot be used to encrypt; the message says why."""


@dataclass(frozen=True)
class PublicKey:
    path: Path
    fingerprint: str
    user_id: str
    expires: datetime | None

    def describe(self) -> str:
        return f"{self.user_id} ({self.fingerprint[-16:]})"


def gpg_binary() -> str:
    found = shutil.which("gpg")
    if found is None:
        raise KeyProblem("gpg is not installed (Debian: apt-get install gnupg)")
    return found


@contextmanager
def private_gnupg_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="dm-gnupg-"))  # short: gpg's socket paths are length-limited
    home.chmod(0o700)
    try:
        yield home
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def load_public_key(path: Path, now: datetime | None = None) -> PublicKey:
    """Read an armored public key without importing it; refuse keys that cannot encrypt today."""
    if not path.is_file():
        raise KeyProblem(f"{path} does not exist")
    with private_gnupg_home() as home:
        result = subprocess.run(
            [
                gpg_binary(),
                "--homedir",
                str(home),
                "--batch",
                "--with-colons",
                "--import-options",
                "show-only",
                "--import",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    records = [line.split(":") for line in result.stdout.splitlines()]
    if any(r[0] == "sec" for r in records):
        raise KeyProblem(f"{path} holds a secret key; give the public key only")
    primaries = [r for r in records if r[0] == "pub"]
    if result.returncode != 0 or not primaries:
        raise KeyProblem(f"{path} is not an OpenPGP public key")
    if len(primaries) > 1:
        raise KeyProblem(f"{path} holds {len(primaries)} keys; give exactly one")
    primary = primaries[0]
    fingerprint = next((r[9] for r in records if r[0] == "fpr"), primary[4])
    user_id = next((r[9] for r in records if r[0] == "uid"), fingerprint)
    moment = now or datetime.now(UTC)
    if primary[1] == "r":
        raise KeyProblem(f"{path}: the key {fingerprint} is revoked")
    expires = datetime.fromtimestamp(int(primary[6]), UTC) if primary[6] else None
    if primary[1] == "e" or (expires is not None and expires <= moment):
        raise KeyProblem(f"{path}: the key {fingerprint} expired")
    if "E" not in primary[11]:
        raise KeyProblem(f"{path}: the key {fingerprint} has no usable encryption subkey")
    return PublicKey(path, fingerprint, user_id, expires)


@dataclass(frozen=True)
class Encrypted:
    path: Path
    bytes: int
    sha256: str


def encrypt_file(source: Path, target: Path, key: PublicKey, already_compressed: bool) -> Encrypted:
    """Encrypt `source` into `target` (binary OpenPGP), returning size and sha256 of what was written."""
    command = [
        gpg_binary(),
        "--batch",
        "--no-tty",
        "--quiet",
        "--trust-model",
        "always",
        "--recipient-file",
        str(key.path),
        "--output",
        "-",
    ]
    if already_compressed:
        command += ["--compress-algo", "none"]
    digest, size = hashlib.sha256(), 0
    with private_gnupg_home() as home, target.open("wb") as out:
        process = subprocess.Popen(
            [command[0], "--homedir", str(home), *command[1:], "--encrypt", str(source)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None  # both are pipes
        while chunk := process.stdout.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        stderr = process.stderr.read().decode(errors="replace").strip()
        if process.wait() != 0:
            target.unlink(missing_ok=True)
            raise KeyProblem(
                f"gpg could not encrypt {source.name}: {stderr.splitlines()[-1] if stderr else 'failed'}"
            )
    return Encrypted(target, size, digest.hexdigest())


def encrypt_staged(
    staged: list[StagedFile],
    key: PublicKey,
    staging_dir: Path,
    compressed: bool,
    progress: Callable[[str], None] = lambda message: None,
) -> list[StagedFile]:
    """Replace each staged file by its .gpg; sizes and hashes become those of the delivered bytes."""
    encrypted = []
    for plain in staged:
        progress(f"encrypting {plain.name} for {key.describe()}")
        name = plain.name + ".gpg"
        result = encrypt_file(plain.path, staging_dir / name, key, compressed)
        plain.path.unlink()
        encrypted.append(StagedFile(name, result.path, plain.rows, result.bytes, result.sha256))
    return encrypted
