"""Azure Blob Storage with azure-storage-blob.

A block blob is committed in one step (its block list), so a reader never sees a partial file: each file
is uploaded straight to its final name. azure-core retries connection failures and throttling; the stored
size is checked after each upload.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobPrefix, BlobServiceClient

from directmail.config import AzureRouting
from directmail.delivery.retry import describe_exception
from directmail.errors import DeliveryError
from directmail.secrets import remember

_SECRET_PARTS = re.compile(r"(?:AccountKey|SharedAccessSignature)=([^;]+)|[?&]sig=([^&;]+)", re.IGNORECASE)


def _connection_string(routing: AzureRouting) -> str:
    """Reveal it and remember its secret parts, so a library message quoting one part is scrubbed too."""
    value = routing.connection_string.reveal()
    for match in _SECRET_PARTS.finditer(value):
        remember(match.group(1) or match.group(2))
    return value


class AzureDestination:
    def __init__(self, name: str, routing: AzureRouting):
        self.name = name
        self.routing = routing
        try:
            service = BlobServiceClient.from_connection_string(
                _connection_string(routing),
                retry_total=routing.retries,
                connection_timeout=routing.timeout,
                read_timeout=routing.timeout,
            )
        except ValueError:
            raise DeliveryError(f"azure routing '{name}': the connection string is not valid") from None
        self.account = service.account_name
        self.container = service.get_container_client(routing.container)
        self._container_checked = False

    def describe(self) -> str:
        return f"azure://{self.account}/{self.routing.container}/{self.routing.folder}"

    def blob_name(self, relative_name: str) -> str:
        return self.routing.folder + relative_name

    def _fail(self, what: str, exc: Exception) -> DeliveryError:
        where = f"azure routing '{self.name}' (container {self.routing.container})"
        if isinstance(exc, ResourceNotFoundError) and getattr(exc, "error_code", "") == "ContainerNotFound":
            return DeliveryError(f"{where}: {what}: the container does not exist in account {self.account}")
        if isinstance(exc, ClientAuthenticationError) or (
            isinstance(exc, HttpResponseError) and exc.status_code == 403
        ):
            return DeliveryError(f"{where}: {what}: access refused: check the connection string's key or SAS")
        transient = isinstance(exc, ServiceRequestError | ServiceResponseError)  # azure-core retried these
        return DeliveryError(f"{where}: {what}: {describe_exception(exc)}", transient=transient)

    def _check_container(self) -> None:
        if self._container_checked:
            return
        try:
            self.container.get_container_properties()
        except AzureError as exc:
            raise self._fail("checking the container", exc) from None
        self._container_checked = True

    stages_under_temporary_name = False  # an object appears whole once its upload completes

    def put(
        self, local_path: Path, relative_name: str, before_commit: Callable[[], None] | None = None
    ) -> None:
        if before_commit is not None:
            before_commit()
        self._check_container()
        name = self.blob_name(relative_name)
        size = local_path.stat().st_size
        try:
            with local_path.open("rb") as data:
                blob = self.container.upload_blob(name, data, length=size, overwrite=True, max_concurrency=4)
            held = blob.get_blob_properties().size
        except AzureError as exc:
            raise self._fail(f"upload of {relative_name}", exc) from None
        if held != size:
            raise DeliveryError(
                f"azure routing '{self.name}': {name} holds {held} bytes after upload, sent {size}"
            )

    def remove(self, relative_name: str) -> None:
        try:
            self.container.delete_blob(self.blob_name(relative_name))
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise self._fail(f"removing {relative_name}", exc) from None

    def read(self, relative_name: str) -> bytes | None:
        self._check_container()
        try:
            return self.container.download_blob(self.blob_name(relative_name)).readall()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise self._fail(f"reading {relative_name}", exc) from None

    def size(self, relative_name: str) -> int | None:
        self._check_container()
        try:
            return self.container.get_blob_client(self.blob_name(relative_name)).get_blob_properties().size
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise self._fail(f"checking {relative_name}", exc) from None

    def list(self, relative_folder: str) -> list[str]:
        self._check_container()
        prefix = self.blob_name(relative_folder.strip("/") + "/")
        names = []
        try:
            for item in self.container.walk_blobs(name_starts_with=prefix, delimiter="/"):
                name = item.name[len(prefix) :]
                if isinstance(item, BlobPrefix) or not name or name.startswith("."):
                    continue  # a subfolder, or a hidden name
                names.append(f"{relative_folder}/{name}")
        except AzureError as exc:
            raise self._fail(f"listing {relative_folder}", exc) from None
        return sorted(names)

    def close(self) -> None:
        self.container.close()
