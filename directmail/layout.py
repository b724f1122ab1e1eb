"""Contract 3's file names: stem, run timestamp, part suffix, then .gz, then .gpg; sidecars and manifest.

All are built from the campaign's file_name with its placeholders expanded (directmail.filenames)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from directmail.filenames import expand_file_name


@dataclass(frozen=True)
class FileLayout:
    file_name: str
    run_time: datetime
    append_timestamp: bool = False
    compressed: bool = False
    encrypted: bool = False
    campaign: str = ""  # for the file name's placeholders
    configuration: str = ""

    @property
    def name(self) -> str:
        """The file name with its placeholders filled in; the names below are built from it."""
        return expand_file_name(self.file_name, self.campaign, self.configuration, self.run_time)

    @property
    def _path(self) -> PurePosixPath:
        return PurePosixPath(self.name)

    @property
    def folder(self) -> PurePosixPath:
        return self._path.parent

    @property
    def stem(self) -> str:
        stem = self._path.stem if self._path.suffix else self._path.name
        if self.append_timestamp:
            stem += self.run_time.strftime("_%Y%m%d_%H%M%S")
        return stem

    def part_name(self, index: int, parts: int) -> str:
        """Relative path of part `index` (1-based) of `parts`; a single part has no suffix."""
        name = self.stem + (f"_{index:03d}" if parts > 1 else "") + self._path.suffix
        name += ".gz" if self.compressed else ""
        name += ".gpg" if self.encrypted else ""
        return str(self.folder / name)

    def is_part_name(self, relative_name: str) -> bool:
        """Whether a relative name is one of this layout's parts (any part count, compressed or encrypted
        or not: an earlier drop may have been written with other settings)."""
        path = PurePosixPath(relative_name)
        if path.parent != self.folder:
            return False
        pattern = re.escape(self.stem) + r"(_\d{3,})?" + re.escape(self._path.suffix) + r"(\.gz)?(\.gpg)?"
        return re.fullmatch(pattern, path.name) is not None

    @property
    def manifest_name(self) -> str:
        return str(self.folder / f"{self.stem}.manifest.json")

    @staticmethod
    def checksum_name(relative_name: str) -> str:
        return relative_name + ".sha256"


def part_count(rows: int, split_threshold: int) -> int:
    return max(1, -(-rows // split_threshold))
