"""Contract 3's file names: stem, run timestamp, part suffix, then .gz or .zip, then .gpg; sidecars and
manifest.

All are built from the campaign's file_name with its placeholders expanded (directmail.filenames)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from directmail.filenames import expand_file_name

# What a folder or file name may hold (ext4, XFS, APFS, NTFS…) and a whole name (an S3 key), in UTF-8 bytes.
MAX_COMPONENT_BYTES = 255
MAX_NAME_BYTES = 1024
# Local folders and SFTP write a file under this name beside its final one, then rename it.
TEMPORARY_NAME = ".{}.partial"


def temporary_name(relative_name: str) -> str:
    """Where local folders and SFTP write `relative_name` before renaming it into place."""
    path = PurePosixPath(relative_name)
    return str(path.with_name(TEMPORARY_NAME.format(path.name)))


# What each `compression` of a configuration appends to a part's name.
COMPRESSION_SUFFIXES = {"none": "", "gzip": ".gz", "zip": ".zip"}


@dataclass(frozen=True)
class FileLayout:
    file_name: str
    run_time: datetime
    append_timestamp: bool = False
    compression: str = "none"  # none | gzip | zip (a configuration's `compression`)
    encrypted: bool = False
    campaign: str = ""  # for the file name's placeholders
    configuration: str = ""

    @property
    def name(self) -> str:
        """The file name with its placeholders filled in; the names below are built from it."""
        return expand_file_name(self.file_name, self.campaign, self.configuration, self.run_time)

    @property
    def compressed(self) -> bool:
        return self.compression != "none"

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
        name += COMPRESSION_SUFFIXES[self.compression]
        name += ".gpg" if self.encrypted else ""
        return str(self.folder / name)

    @staticmethod
    def archive_member(part_name: str) -> str:
        """The name of the one member of a zip part: the part's base name without `.zip`."""
        return PurePosixPath(part_name).name.removesuffix(".zip")

    def is_part_name(self, relative_name: str) -> bool:
        """Whether a relative name is one of this layout's parts (any part count, compressed or encrypted
        or not: an earlier drop may have been written with other settings)."""
        path = PurePosixPath(relative_name)
        if path.parent != self.folder:
            return False
        suffix = re.escape(self._path.suffix)
        pattern = re.escape(self.stem) + r"(_\d{3,})?" + suffix + r"(\.gz|\.zip)?(\.gpg)?"
        return re.fullmatch(pattern, path.name) is not None

    @property
    def manifest_name(self) -> str:
        return str(self.folder / f"{self.stem}.manifest.json")

    @staticmethod
    def checksum_name(relative_name: str) -> str:
        return relative_name + ".sha256"


def part_count(rows: int, split_threshold: int) -> int:
    return max(1, -(-rows // split_threshold))


def name_length_problem(
    file_name: str, campaign: str, configuration: str, append_timestamp: bool, compression: str = "gzip"
) -> str | None:
    """Why a name a run could write from `file_name` would be too long, or None.

    The longest names a run can write are measured: the part suffix (_001), the timestamp (with
    append_timestamp), the compression's suffix (.gz, unless the configuration is known to zip), .gpg, the
    .sha256 sidecar and the manifest, each under its temporary name.
    {run_date} and {run_time} always expand to the same length; {campaign} and {configuration} are known.
    """
    layout = FileLayout(
        file_name,
        datetime(2000, 1, 1),
        append_timestamp=append_timestamp,
        compression=compression,
        encrypted=True,
        campaign=campaign,
        configuration=configuration,
    )
    part = layout.part_name(1, 2)
    for written in (FileLayout.checksum_name(part), layout.manifest_name):
        temporary = temporary_name(written)
        size = len(temporary.encode("utf-8"))
        if size > MAX_NAME_BYTES:
            return (
                f"file_name would give a name of {size} bytes in UTF-8 ('{_shortened(temporary)}': the "
                "longest a run writes, under its temporary name); a whole name, folders included, holds at "
                f"most {MAX_NAME_BYTES}"
            )
        *folders, last = PurePosixPath(temporary).parts
        for folder in folders:
            if (size := len(folder.encode("utf-8"))) > MAX_COMPONENT_BYTES:
                return (
                    f"file_name has a folder name of {size} bytes in UTF-8 once expanded "
                    f"('{_shortened(folder)}'); a folder name holds at most {MAX_COMPONENT_BYTES}"
                )
        if (size := len(last.encode("utf-8"))) > MAX_COMPONENT_BYTES:
            return (
                f"file_name would give a file name of {size} bytes in UTF-8 ('{_shortened(last)}': the "
                "longest a run writes, with the part number, the timestamp if append_timestamp, "
                f"{COMPRESSION_SUFFIXES[compression]}, .gpg "
                "and .sha256 or .manifest.json, under its temporary name "
                f"{TEMPORARY_NAME.format('<name>')}); a file name holds at most {MAX_COMPONENT_BYTES}"
            )
    return None


def _shortened(text: str, keep: int = 24) -> str:
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}…{text[-keep:]}"
