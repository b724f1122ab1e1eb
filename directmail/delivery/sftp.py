"""SFTP with paramiko: pinned host key, password or OpenSSH key, temporary name then rename, size checked.

Why a hand-built Transport rather than SSHClient: it lets us offer the server only the host-key types we
have pinned (so the server cannot pick an unpinned one), and set large windows so uploads stay pipelined.
"""

from __future__ import annotations

import contextlib
import errno
import io
import posixpath
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from directmail.config import SftpRouting, resolve_directory
from directmail.delivery.retry import describe_exception, with_retries
from directmail.errors import DeliveryError
from directmail.secrets import remember

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

WINDOW_SIZE = 1 << 27  # 128 MiB: the writer never stalls waiting for window adjustments on fast links
MAX_PACKET_SIZE = 1 << 18
# OpenSSH's sftp-server accepts requests up to 256 KiB (SFTP_MAX_MSG_LENGTH); others are only promised 32 KiB
OPENSSH_WRITE_SIZE = 255 * 1024
# AEAD ciphers first: one pass for encryption and integrity is markedly faster than CTR + HMAC
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
PERMANENT_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}

ByteProgress = Callable[[int, int], None]
T = TypeVar("T")


class HostKeyRefused(DeliveryError):
    """The server's host key is not the pinned one (or none is pinned): never connect."""


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def pinned_host_keys(path: Path, host: str, port: int) -> dict[str, paramiko.PKey]:
    """The keys pinned for host:port in an OpenSSH known_hosts file (hashed entries work too)."""
    if not path.is_file():
        raise HostKeyRefused(f"known_hosts file {path} does not exist")
    try:
        keys = paramiko.HostKeys(str(path)).lookup(known_hosts_name(host, port))
    except (OSError, paramiko.SSHException) as exc:
        raise HostKeyRefused(f"known_hosts file {path} cannot be read: {describe_exception(exc)}") from None
    if not keys:
        raise HostKeyRefused(
            f"no host key for {known_hosts_name(host, port)} in {path}: unknown hosts are refused "
            "(add the mail house's key, e.g. from ssh-keyscan, after checking its fingerprint)"
        )
    return dict(keys)


def load_private_key(value: str, passphrase: str | None) -> paramiko.PKey:
    """An OpenSSH (or PEM) private key, given as a file path or as the key text itself."""
    if "-----BEGIN" in value:
        data = value.encode()
    else:
        path = Path(value).expanduser()
        if not path.is_file():
            raise DeliveryError("private_key: the key file named by the secret does not exist")
        data = path.read_bytes()
    password = passphrase.encode() if passphrase else None
    loaded: PrivateKeyTypes
    try:
        try:
            loaded = serialization.load_ssh_private_key(data, password=password)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        reason = "the key is encrypted: set private_key_passphrase" if not passphrase else "wrong passphrase"
        raise DeliveryError(f"private_key: {reason}") from None
    except ValueError:
        reason = "wrong passphrase" if passphrase else "not an OpenSSH or PEM private key"
        raise DeliveryError(f"private_key: {reason}") from None
    key_class: dict[type[PrivateKeyTypes], type[paramiko.PKey]] = {
        rsa.RSAPrivateKey: paramiko.RSAKey,
        ed25519.Ed25519PrivateKey: paramiko.Ed25519Key,
        ec.EllipticCurvePrivateKey: paramiko.ECDSAKey,
    }
    for base, paramiko_class in key_class.items():
        if isinstance(loaded, base):
            return paramiko_class.from_private_key(io.StringIO(data.decode()), password=passphrase)
    raise DeliveryError(f"private_key: unsupported key type {type(loaded).__name__}")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, paramiko.AuthenticationException | paramiko.BadHostKeyException):
        return False
    if isinstance(exc, OSError) and exc.errno in PERMANENT_ERRNOS:
        return False
    return isinstance(exc, OSError | EOFError | paramiko.SSHException | socket.timeout)


class SftpDestination:
    def __init__(
        self, name: str, routing: SftpRouting, project_dir: Path, on_bytes: ByteProgress | None = None
    ):
        self.name = name
        self.routing = routing
        self.known_hosts = resolve_directory(project_dir, routing.known_hosts)
        self.on_bytes = on_bytes
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._write_size = 32768  # the largest write request the connected server is known to take
        self._made: set[str] = set()

    def describe(self) -> str:
        from directmail.delivery import describe_routing

        return describe_routing(self.routing, Path())

    # -- connection -------------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"sftp routing '{self.name}' ({self.routing.host}:{self.routing.port})"

    def _session(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self._connect()
        return self._sftp

    def _connect(self) -> paramiko.SFTPClient:
        r = self.routing
        pinned = pinned_host_keys(self.known_hosts, r.host, r.port)
        sock = socket.create_connection((r.host, r.port), timeout=r.timeout)
        transport = paramiko.Transport(
            sock, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET_SIZE
        )
        self._transport = transport
        options = transport.get_security_options()
        offered = [t for t in options.key_types if t in pinned or _base_type(t) in pinned]
        options.key_types = offered or list(pinned)
        options.ciphers = [
            *(c for c in PREFERRED_CIPHERS if c in options.ciphers),
            *(c for c in options.ciphers if c not in PREFERRED_CIPHERS),
        ]
        transport.start_client(timeout=r.timeout)
        self._check_host_key(transport.get_remote_server_key(), pinned)
        self._authenticate(transport)
        # SFTPClient.from_transport's steps, keeping the channel for its timeout
        channel = transport.open_session(window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET_SIZE)
        channel.invoke_subsystem("sftp")
        sftp = paramiko.SFTPClient(channel)
        channel.settimeout(r.timeout)
        openssh = transport.remote_version.startswith("SSH-2.0-OpenSSH")
        self._write_size = OPENSSH_WRITE_SIZE if openssh else 32768
        return sftp

    def _check_host_key(self, offered: paramiko.PKey, pinned: dict[str, paramiko.PKey]) -> None:
        expected = pinned.get(offered.get_name())
        if expected is None or expected != offered:
            raise HostKeyRefused(
                f"{self._where()}: the server's {offered.get_name()} host key ({offered.fingerprint}) "
                f"does not match {self.known_hosts}; refused. If the mail house changed its key, "
                "verify the new fingerprint with them and update known_hosts"
            )

    def _authenticate(self, transport: paramiko.Transport) -> None:
        r = self.routing
        tried = []
        if r.private_key is not None:
            passphrase = r.private_key_passphrase.reveal() if r.private_key_passphrase else None
            try:
                key = load_private_key(r.private_key.reveal(), passphrase)
            except DeliveryError as exc:
                raise DeliveryError(f"{self._where()}: {exc}") from None
            tried.append(f"key {key.get_name()}")
            with contextlib.suppress(paramiko.AuthenticationException):
                transport.auth_publickey(r.username, key)
        if not transport.is_authenticated() and r.password is not None:
            tried.append("password")
            with contextlib.suppress(paramiko.AuthenticationException):
                transport.auth_password(r.username, remember(r.password.reveal()))
        if not transport.is_authenticated():
            raise DeliveryError(
                f"{self._where()}: authentication failed for user '{r.username}' (tried {', '.join(tried)})"
            )

    def _drop(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = self._sftp = None
        self._made.clear()

    def _retrying(self, action: Callable[[], None], what: str) -> None:
        with_retries(
            action,
            what=f"{self._where()}: {what}",
            attempts=self.routing.retries + 1,
            is_transient=is_transient,
            on_failure=self._drop,
        )

    # -- files ------------------------------------------------------------------------------------------

    def remote_path(self, relative_name: str) -> str:
        return posixpath.normpath(posixpath.join(self.routing.directory, relative_name))

    def _make_dirs(self, sftp: paramiko.SFTPClient, directory: str) -> None:
        if directory in ("", ".", "/") or directory in self._made:
            return
        try:
            sftp.stat(directory)
        except FileNotFoundError:
            self._make_dirs(sftp, posixpath.dirname(directory))
            sftp.mkdir(directory)
        self._made.add(directory)

    stages_under_temporary_name = True

    def put(
        self, local_path: Path, relative_name: str, before_commit: Callable[[], None] | None = None
    ) -> None:
        final = self.remote_path(relative_name)
        temporary = posixpath.join(posixpath.dirname(final), f".{posixpath.basename(final)}.partial")
        size = local_path.stat().st_size

        def upload() -> None:
            sftp = self._session()
            self._make_dirs(sftp, posixpath.dirname(final))
            self._upload(sftp, local_path, temporary, size)
            held = sftp.stat(temporary).st_size
            if held != size:
                raise OSError(f"size mismatch after upload: server holds {held} bytes, sent {size}")
            if before_commit is not None:
                before_commit()
            try:
                sftp.posix_rename(temporary, final)
            except OSError as exc:  # servers without posix-rename@openssh.com: remove, then rename
                if exc.errno in PERMANENT_ERRNOS - {errno.ENOENT}:
                    raise
                _remove_if_present(sftp, final)
                sftp.rename(temporary, final)

        try:
            self._retrying(upload, f"upload of {relative_name}")
        except DeliveryError:
            self._clean_up(temporary)
            raise

    def _upload(self, sftp: paramiko.SFTPClient, local_path: Path, remote_path: str, size: int) -> None:
        """Pipelined writes (no wait for each acknowledgement), in the largest requests the server takes."""
        chunk = self._write_size
        sent = 0
        with local_path.open("rb") as source, sftp.file(remote_path, "wb") as remote:
            remote.set_pipelined(True)
            remote.MAX_REQUEST_SIZE = chunk
            while data := source.read(chunk):
                remote.write(data)
                sent += len(data)
                if self.on_bytes is not None:
                    self.on_bytes(sent, size)

    def remove(self, relative_name: str) -> None:
        self._retrying(lambda: _remove_if_present(self._session(), self.remote_path(relative_name)), "remove")

    def read(self, relative_name: str) -> bytes | None:
        def fetch(sftp: paramiko.SFTPClient, path: str) -> bytes:
            with sftp.open(path, "rb") as remote:
                return remote.read()

        return self._if_present(f"reading {relative_name}", fetch, relative_name)

    def size(self, relative_name: str) -> int | None:
        return self._if_present(
            f"checking {relative_name}", lambda sftp, path: sftp.stat(path).st_size, relative_name
        )

    def list(self, relative_folder: str) -> list[str]:
        listed: list[str] = []

        def attempt() -> None:
            listed.clear()
            try:
                entries = self._session().listdir_attr(self.remote_path(relative_folder))
            except FileNotFoundError:
                return
            listed.extend(
                f"{relative_folder}/{entry.filename}"
                for entry in entries
                if stat.S_ISREG(entry.st_mode or 0) and not entry.filename.startswith(".")
            )

        self._retrying(attempt, f"listing {relative_folder}")
        return sorted(listed)

    def _if_present(
        self, what: str, action: Callable[[paramiko.SFTPClient, str], T], relative_name: str
    ) -> T | None:
        """The action's result on the remote file (retried like uploads), or None when it is absent."""
        found: list[T | None] = []

        def attempt() -> None:
            found.clear()
            try:
                found.append(action(self._session(), self.remote_path(relative_name)))
            except FileNotFoundError:
                found.append(None)

        self._retrying(attempt, what)
        return found[0]

    def _clean_up(self, temporary: str) -> None:
        """Best effort, on a connection still open (e.g. the rename was refused). After a dropped connection
        there is nothing to reconnect for: the next attempt replaces the temporary file anyway."""
        if self._sftp is None:
            return
        try:
            _remove_if_present(self._sftp, temporary)
        except Exception:
            self._drop()

    def close(self) -> None:
        self._drop()


def _remove_if_present(sftp: paramiko.SFTPClient, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        sftp.remove(path)


def _base_type(key_type: str) -> str:
    """RSA host keys are pinned as ssh-rsa but negotiated as rsa-sha2-256/512."""
    return "ssh-rsa" if key_type.startswith("rsa-sha2-") else key_type
