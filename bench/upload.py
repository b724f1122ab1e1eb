"""Upload throughput of a 100 MB extract: directmail's SFTP (paramiko) against OpenSSH's own `sftp` client
to the same local sshd, and S3 multipart to a local moto server. Loopback only.

    uv run python -m bench.upload [--megabytes 100] [--repeat 3]

Prints MB/s for each (best of --repeat) and the ratio directmail SFTP / OpenSSH sftp.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from directmail.config import S3Routing, SftpRouting
from directmail.delivery.s3 import S3Destination
from directmail.delivery.sftp import SftpDestination
from tests.servers import S3Server, SshServer


def extract_like_file(path: Path, megabytes: int) -> Path:
    """CSV-shaped text that does not compress to nothing (ciphers see realistic bytes)."""
    target, written, i = megabytes * 1_000_000, 0, 0
    with path.open("wb") as out:
        while written < target:
            block = "".join(
                f"P{n:09d},Name {os.urandom(6).hex()},{n} Mail Street,{n % 99999:05d},Paris,FR,x\n"
                for n in range(i, i + 10_000)
            ).encode()
            out.write(block)
            written += len(block)
            i += 10_000
    return path


def best_of(repeat: int, action) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def sftp_routing(server: SshServer, known_hosts: Path) -> SftpRouting:
    os.environ["BENCH_SFTP_KEY"] = str(server.client_keys["ed25519"])
    return SftpRouting.model_validate(
        {
            "type": "sftp",
            "host": "127.0.0.1",
            "port": server.port,
            "username": server.user,
            "private_key": "${BENCH_SFTP_KEY}",
            "known_hosts": str(known_hosts),
            "directory": str(server.root),
        }
    )


def openssh_put(server: SshServer, known_hosts: Path, source: Path, work: Path) -> None:
    batch = work / "batch"
    batch.write_text(f"put {source} {server.root}/openssh.csv\n")
    subprocess.run(
        [
            "sftp", "-q", "-b", str(batch), "-P", str(server.port), "-i", str(server.client_keys["ed25519"]),
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            f"{server.user}@127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def compare_sftp(source: Path, work: Path, repeat: int) -> dict[str, float]:
    """Best-of-`repeat` seconds to upload `source` with directmail's SFTP and with OpenSSH's `sftp`."""
    server = SshServer()
    try:
        known_hosts = server.write_known_hosts(work / "known_hosts")
        routing = sftp_routing(server, known_hosts)

        def directmail_put() -> None:
            destination = SftpDestination("bench", routing, work)
            destination.put(source, "directmail.csv")
            destination.close()

        return {
            "directmail sftp (paramiko)": best_of(repeat, directmail_put),
            "OpenSSH sftp": best_of(repeat, lambda: openssh_put(server, known_hosts, source, work)),
        }
    finally:
        server.remove()


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dm-bench-") as folder:
        work = Path(folder)
        source = extract_like_file(work / "extract.csv", args.megabytes)
        size_mb = source.stat().st_size / 1e6
        results: dict[str, float] = {}

        results.update(compare_sftp(source, work, args.repeat))

        s3 = S3Server()
        try:
            s3.create_bucket("bench")
            os.environ["BENCH_S3_ID"] = os.environ["BENCH_S3_SECRET"] = "testing"
            routing = S3Routing.model_validate(
                {
                    "type": "s3",
                    "bucket": "bench",
                    "region": "eu-west-1",
                    "access_key_id": "${BENCH_S3_ID}",
                    "secret_access_key": "${BENCH_S3_SECRET}",
                    "endpoint_url": s3.endpoint_url,
                }
            )
            destination = S3Destination("bench", routing)
            results["directmail s3 (boto3 multipart → moto)"] = best_of(
                args.repeat, lambda: destination.put(source, "directmail.csv")
            )
            destination.close()
        finally:
            s3.stop()

    print(f"upload of a {size_mb:.0f} MB extract over loopback, best of {args.repeat}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for name, seconds in results.items():
        print(f"  {name:<42} {seconds:6.2f} s  {size_mb / seconds:7.1f} MB/s")
    ratio = results["OpenSSH sftp"] / results["directmail sftp (paramiko)"]
    print(f"  directmail sftp / OpenSSH sftp throughput: {ratio:.2f}")


if __name__ == "__main__":
    main()
