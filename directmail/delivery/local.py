"""The landing folder: a local (or mounted) directory the mail house reads."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from directmail.config import LocalRouting, resolve_directory
from directmail.errors import DeliveryError
from directmail.layout import TEMPORARY_NAME


class LocalDestination:
    def __init__(self, project_dir: Path, routing: LocalRouting):
        self.root = resolve_directory(project_dir, routing.directory)

    def describe(self) -> str:
        return f"local folder {self.root}"

    stages_under_temporary_name = True

    def put(
        self, local_path: Path, relative_name: str, before_commit: Callable[[], None] | None = None
    ) -> None:
        final = self._inside(relative_name, "deliver")
        temporary = final.with_name(TEMPORARY_NAME.format(final.name))
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._inside(relative_name, "deliver")  # a link put in place while the folders were made
            _place(local_path, temporary)
            with temporary.open("rb") as handle:
                os.fsync(handle.fileno())
            if before_commit is not None:
                before_commit()
            os.replace(temporary, final)
        except OSError as exc:
            with contextlib.suppress(OSError):  # e.g. the folder is a file: there is no temporary to remove
                temporary.unlink(missing_ok=True)
            raise DeliveryError(
                f"could not deliver {relative_name} to {self.root}: {exc.strerror or exc}"
            ) from None

    def remove(self, relative_name: str) -> None:
        self._inside(relative_name, "remove").unlink(missing_ok=True)

    def read(self, relative_name: str) -> bytes | None:
        try:
            return self._inside(relative_name, "read", last=True).read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # nothing there (put reports a folder that is a file)
            return None

    def size(self, relative_name: str) -> int | None:
        try:
            return self._inside(relative_name, "read", last=True).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def list(self, relative_folder: str) -> list[str]:
        folder = self._inside(relative_folder, "list", last=True)
        try:
            entries = list(folder.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise DeliveryError(f"could not list {folder}: {exc.strerror or exc}") from None
        return sorted(
            f"{relative_folder}/{entry.name}"
            for entry in entries
            if entry.is_file() and not entry.name.startswith(".")
        )

    def close(self) -> None:
        pass

    def _inside(self, relative_name: str, action: str, last: bool = False) -> Path:
        """root / relative_name, refused (DeliveryError) if a folder on the way (and, with `last`, the
        name itself) is a symbolic link leading outside the routing's folder: nothing is written, read or
        removed there. A link inside the folder is followed; the folder itself may be a link (a mount).
        Put and remove never follow the last name: they replace or remove the link itself."""
        root = self.root.resolve()
        path = self.root
        parts = PurePosixPath(relative_name).parts
        for index, part in enumerate(parts):
            path = path / part
            if index == len(parts) - 1 and not last:
                break
            if not path.is_symlink():
                continue
            target = path.resolve()
            if not target.is_relative_to(root):
                raise DeliveryError(
                    f"could not {action} {relative_name} in {self.root}: {path} is a symbolic link to "
                    f"{target}, outside the routing's folder; nothing is written, read or removed through it"
                )
        return self.root / relative_name


def _place(local_path: Path, temporary: Path) -> None:
    """A hard link when the staged file is on the same file system (no second copy of a large drop to
    write), else a copy. The staged file is never written again once staged, so sharing it is safe."""
    temporary.unlink(missing_ok=True)  # left by an attempt that was killed
    try:
        os.link(local_path, temporary)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(local_path, temporary)
