"""Real servers for delivery tests, each on a free 127.0.0.1 port, always stopped afterwards.

- OpenSSH sshd (Debian's openssh-server) with a temporary host key, authorized_keys and a password user;
- moto in server mode for S3;
- Azurite (npm) for Azure Blob;
- gpg with a throwaway keypair, to decrypt what a server holds;
- PostgreSQL 15 (Debian's postgresql-15) in a throwaway data directory, for the `postgres` target.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SSHD = "/usr/sbin/sshd"
SFTP_USER = "dmsftp"
SFTP_PASSWORD = "S3cret-sftp-Pa55"
AZURITE_MAIN = REPO / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout} s")


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


# -- OpenSSH ------------------------------------------------------------------------------------------


def ensure_sftp_user() -> str:
    """A local account that logs in by password or key; needs root (CI and the dev container are)."""
    try:
        pwd.getpwnam(SFTP_USER)
    except KeyError:
        run("useradd", "--create-home", "--shell", "/bin/sh", SFTP_USER)
    run("chpasswd", input=f"{SFTP_USER}:{SFTP_PASSWORD}\n")
    return SFTP_USER


class SshServer:
    def __init__(self) -> None:
        if not Path(SSHD).exists():
            raise RuntimeError("OpenSSH server missing: apt-get install openssh-server (.ci/run does)")
        if os.geteuid() != 0:
            raise RuntimeError("the sshd fixture needs root to create its password user")
        self.user = ensure_sftp_user()
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        # not under pytest's tmp_path (mode 0700): the sftp user must be able to reach its folder
        self.directory = Path(tempfile.mkdtemp(prefix="dm-sshd-"))
        self.directory.chmod(0o755)
        self.root = self.directory / "sftp-root"  # what the mail house's server holds
        self.root.mkdir()
        os.chown(self.root, pwd.getpwnam(self.user).pw_uid, -1)
        self.host_key = self._keygen("host_key", "ed25519")
        self.client_keys = {
            "ed25519": self._keygen("id_ed25519", "ed25519"),
            "ed25519-passphrase": self._keygen("id_ed25519_pass", "ed25519", passphrase="key-Pa55phrase"),
            "rsa": self._keygen("id_rsa", "rsa"),
        }
        authorized = "".join(Path(f"{k}.pub").read_text() for k in self.client_keys.values())
        (self.directory / "authorized_keys").write_text(authorized)
        Path("/run/sshd").mkdir(exist_ok=True)
        self.config = self.directory / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.directory / 'authorized_keys'}",
                    "Subsystem sftp internal-sftp",
                    "UsePAM no",
                    "StrictModes no",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    f"AllowUsers {self.user} root",
                    "MaxStartups 50",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        self.start()

    def _keygen(self, name: str, kind: str, passphrase: str = "") -> Path:
        path = self.directory / name
        run("ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", name, "-f", str(path))
        return path

    def known_hosts_line(self, key_path: Path | None = None) -> str:
        key_type, key = Path(f"{key_path or self.host_key}.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {key_type} {key}\n"

    def write_known_hosts(self, path: Path, key_path: Path | None = None) -> Path:
        path.write_text(self.known_hosts_line(key_path))
        return path

    def start(self) -> None:
        log = self.directory / "sshd.log"
        self.process = subprocess.Popen([SSHD, "-D", "-f", str(self.config), "-E", str(log)])
        wait_until(self._answers, 10, "sshd")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"sshd exited: {(self.directory / 'sshd.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                return sock.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def kill_sessions(self) -> None:
        """Kill the per-connection children: what a server crash looks like to a client mid-upload."""
        for pid in _descendants(self.process.pid):
            _kill(pid)

    def stop(self) -> None:
        if self.process is None:
            return
        self.kill_sessions()
        _kill(self.process.pid)
        self.process.wait(timeout=10)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def holds(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.root)): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()
        }


def _descendants(pid: int) -> list[int]:
    """Session processes, deepest last: privilege-separated sshd forks a monitor, then the user's child."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    found = []
    for child in map(int, children):
        found += [child, *_descendants(child)]
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# -- S3 (moto) ----------------------------------------------------------------------------------------


class S3Server:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        wait_until(self._answers, 10, "moto")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=5).close()

    def client(self, region: str = "eu-west-1"):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_bucket(self, name: str, region: str = "eu-west-1") -> None:
        self.client(region).create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
        )

    def holds(self, bucket: str) -> dict[str, bytes]:
        client = self.client()
        listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}

    def stop(self) -> None:
        self.server.stop()


# -- Azure Blob (Azurite) -----------------------------------------------------------------------------


class AzuriteServer:
    def __init__(self, directory: Path) -> None:
        if not AZURITE_MAIN.exists():
            raise RuntimeError("Azurite missing: run `npm ci` in the repository (.ci/run does)")
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                shutil.which("node") or "node",
                str(AZURITE_MAIN),
                "--blobHost", "127.0.0.1",
                "--blobPort", str(self.port),
                "--location", str(directory),
                "--silent", "--skipApiVersionCheck", "--disableTelemetry",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        for line in self.process.stdout:
            if "successfully listens" in line:
                break
            if time.monotonic() > deadline:
                break
        if self.process.poll() is not None:
            raise RuntimeError(f"Azurite exited with {self.process.returncode}")

    def connection_string(self, key: str = AZURITE_KEY) -> str:
        return (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={key};BlobEndpoint=http://127.0.0.1:{self.port}/devstoreaccount1;"
        )

    def service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string())

    def holds(self, container: str) -> dict[str, bytes]:
        client = self.service().get_container_client(container)
        return {b.name: client.download_blob(b.name).readall() for b in client.list_blobs()}

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self.process.stdout.close()


# -- OpenPGP ------------------------------------------------------------------------------------------


class MailHouseKey:
    """A throwaway keypair: the public half is given to directmail, the secret half decrypts."""

    def __init__(
        self, directory: Path, user_id: str = "Mail House <files@mailhouse.example>", expire: str = "never"
    ):
        self.home = Path(tempfile.mkdtemp(prefix="dm-test-gpg-"))
        self.home.chmod(0o700)
        self._gpg("--quick-gen-key", user_id, "ed25519", "cert,sign", "never")
        fingerprint = self._fingerprint()
        self._gpg("--quick-add-key", fingerprint, "cv25519", "encr", expire)
        self.public_key = directory / "mailhouse.asc"
        self.public_key.write_text(self._gpg("--armor", "--export", fingerprint).stdout)
        self.fingerprint = fingerprint

    def _gpg(self, *args: str) -> subprocess.CompletedProcess:
        return run(
            "gpg",
            "--homedir",
            str(self.home),
            "--batch",
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            *args,
        )

    def _fingerprint(self) -> str:
        listing = self._gpg("--with-colons", "--list-keys").stdout.splitlines()
        return next(line.split(":")[9] for line in listing if line.startswith("fpr:"))

    def decrypt(self, data: bytes) -> bytes:
        result = subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--quiet", "--decrypt"],
            input=data,
            capture_output=True,
            check=True,
        )
        return result.stdout

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


# -- PostgreSQL -----------------------------------------------------------------------------------------

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresServer:
    """A throwaway PostgreSQL 15: initdb + pg_ctl in a temporary directory, trust auth on 127.0.0.1.

    PostgreSQL refuses to run as root, so under root the server runs as the `postgres` account the
    Debian package creates. fsync is off: the data is thrown away with the directory.
    """

    user = "postgres"

    def __init__(self, database: str = "directmail") -> None:
        if not (POSTGRES_BIN / "initdb").exists():
            raise RuntimeError(
                "PostgreSQL 15 server missing: apt-get install postgresql-15 (make test-servers)"
            )
        self.database = database
        self.port = free_port()
        # not under pytest's tmp_path (mode 0700): the postgres account must own its directory
        self.directory = Path(tempfile.mkdtemp(prefix="dm-postgres-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        if os.geteuid() == 0:
            account = pwd.getpwnam(self.user)
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._as_owner(
            "initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "--no-locale", "-E", "UTF8"
        )
        self.start()
        self._as_owner("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, database)

    def _as_owner(self, program: str, *args: str) -> subprocess.CompletedProcess:
        command = [str(POSTGRES_BIN / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        return run(*command)

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} -c fsync=off"
        self._as_owner(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "-o", options, "start"
        )

    @property
    def environment(self) -> dict[str, str]:
        """libpq's variables, which profiles.yml's `postgres` target and the sample generator read."""
        return {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": "",
            "PGDATABASE": self.database,
        }

    @property
    def uri(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def warehouse(self, database: str = "directmail"):
        """The runner's PostgreSQL warehouse on a database of this server."""
        from directmail.builder import RunnerCredentials, TargetInfo
        from directmail.warehouse.postgres_warehouse import PostgresWarehouse

        connection = {"host": "127.0.0.1", "port": self.port, "user": self.user, "dbname": database}
        return PostgresWarehouse(TargetInfo("postgres", "postgres", RunnerCredentials(connection=connection)))

    def new_database(self, name: str, options: str = "") -> dict[str, str]:
        """A fresh database (`create database <name> <options>`), and the environment that points libpq,
        dbt's `postgres` target and the sample generator at it (no other PG* variable kept)."""
        connect = ["-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "postgres"]
        self._as_owner("psql", *connect, "-v", "ON_ERROR_STOP=1", "-c", f"create database {name} {options}")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return {**environment, **self.environment, "PGDATABASE": name, "DO_NOT_TRACK": "1"}

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as_owner("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
