"""Amazon S3 (or any S3-compatible endpoint) with boto3.

An S3 object becomes visible only once its upload is complete (multipart uploads too, at
CompleteMultipartUpload), so each file is written straight to its final key: atomic without a rename.
Every part carries a SHA-256 checksum that S3 verifies; the stored size is checked after the upload.
Connection failures and throttling are retried by botocore's standard retry mode.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from directmail.config import S3Routing
from directmail.delivery.retry import describe_exception
from directmail.errors import DeliveryError

MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
MISSING_BUCKET = {"NoSuchBucket", "404", "NotFound"}
T = TypeVar("T")
NOT_FOUND = {"NoSuchKey", "404", "NotFound"}  # an object (the bucket itself is checked before any put)
REFUSED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}


def _reveal(secret) -> str | None:
    return secret.reveal() if secret is not None else None


class S3Destination:
    def __init__(self, name: str, routing: S3Routing):
        self.name = name
        self.routing = routing
        session = boto3.session.Session(
            aws_access_key_id=_reveal(routing.access_key_id),
            aws_secret_access_key=_reveal(routing.secret_access_key),
            aws_session_token=_reveal(routing.session_token),
            region_name=routing.region,
        )
        self.client = session.client(
            "s3",
            endpoint_url=routing.endpoint_url,
            config=Config(
                retries={"mode": "standard", "total_max_attempts": routing.retries + 1},
                connect_timeout=routing.timeout,
                read_timeout=routing.timeout,
                request_checksum_calculation="when_supported",
            ),
        )
        self.transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK, max_concurrency=4
        )
        self._bucket_checked = False

    def describe(self) -> str:
        from directmail.delivery import describe_routing

        return describe_routing(self.routing, Path())

    def key(self, relative_name: str) -> str:
        return self.routing.folder + relative_name

    def _fail(self, what: str, exc: Exception) -> DeliveryError:
        where = f"s3 routing '{self.name}' (bucket {self.routing.bucket})"
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        if code in MISSING_BUCKET:
            return DeliveryError(f"{where}: {what}: the bucket does not exist (region {self.routing.region})")
        if code in REFUSED:
            return DeliveryError(
                f"{where}: {what}: access refused ({code}): check the credentials and policy"
            )
        reason = describe_exception(exc)
        transient = isinstance(exc, ConnectionError | HTTPClientError)
        if transient:  # botocore retried these already
            reason += f" (gave up after {self.routing.retries + 1} attempts)"
        return DeliveryError(f"{where}: {what}: {reason}", transient=transient)

    def _check_bucket(self) -> None:
        if self._bucket_checked:
            return
        try:
            self.client.head_bucket(Bucket=self.routing.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("checking the bucket", exc) from None
        self._bucket_checked = True

    stages_under_temporary_name = False  # an object appears whole once its upload completes

    def put(
        self, local_path: Path, relative_name: str, before_commit: Callable[[], None] | None = None
    ) -> None:
        if before_commit is not None:
            before_commit()
        self._check_bucket()
        key = self.key(relative_name)
        size = local_path.stat().st_size
        try:
            self.client.upload_file(
                str(local_path),
                self.routing.bucket,
                key,
                ExtraArgs=self._extra_args(),
                Config=self.transfer,
            )
            held = self.client.head_object(Bucket=self.routing.bucket, Key=key)["ContentLength"]
        except (ClientError, BotoCoreError, boto3.exceptions.S3UploadFailedError) as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, ClientError) else exc
            raise self._fail(f"upload of {relative_name}", cause) from None
        if held != size:
            raise DeliveryError(
                f"s3 routing '{self.name}': {key} holds {held} bytes after upload, sent {size}"
            )

    def _extra_args(self) -> dict:
        extra = {"ChecksumAlgorithm": "SHA256"}
        if self.routing.server_side_encryption:
            extra["ServerSideEncryption"] = self.routing.server_side_encryption
            if self.routing.kms_key_id:
                extra["SSEKMSKeyId"] = self.routing.kms_key_id
        return extra

    def remove(self, relative_name: str) -> None:
        try:
            self.client.delete_object(Bucket=self.routing.bucket, Key=self.key(relative_name))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(f"removing {relative_name}", exc) from None

    def read(self, relative_name: str) -> bytes | None:
        return self._if_present(
            f"reading {relative_name}",
            lambda key: self.client.get_object(Bucket=self.routing.bucket, Key=key)["Body"].read(),
            relative_name,
        )

    def size(self, relative_name: str) -> int | None:
        return self._if_present(
            f"checking {relative_name}",
            lambda key: int(self.client.head_object(Bucket=self.routing.bucket, Key=key)["ContentLength"]),
            relative_name,
        )

    def list(self, relative_folder: str) -> list[str]:
        self._check_bucket()
        prefix = self.key(relative_folder.strip("/") + "/")
        names = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.routing.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"][len(prefix) :]
                    if name and not name.startswith("."):
                        names.append(f"{relative_folder}/{name}")
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(f"listing {relative_folder}", exc) from None
        return sorted(names)

    def _if_present(self, what: str, action: Callable[[str], T], relative_name: str) -> T | None:
        """The action's result on the object, or None when there is no object under that name."""
        self._check_bucket()
        try:
            return action(self.key(relative_name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND:
                return None
            raise self._fail(what, exc) from None
        except BotoCoreError as exc:
            raise self._fail(what, exc) from None

    def close(self) -> None:
        self.client.close()
