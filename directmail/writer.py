"""Write the extract's part files into a private staging folder, streaming batch by batch.

Each part is a complete file: header note, header row (none in a fixed-width file), its rows in global
order, footer note. Bytes are hashed as they are written (after gzip or zip), so the checksum is of exactly
what is delivered.

A zip part is an archive of one member named as the part without `.zip`, written as it streams: the
archive goes to a file that cannot seek, so the member's sizes and CRC follow its data (a data
descriptor) and its header carries zip64 sizes (a part may pass 4 GiB). Its bytes are reproducible: a
fixed member time (1980-01-01 00:00:00), fixed attributes, no extra field but the zip64 one, no comment.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

import pyarrow as pa

from directmail.layout import FileLayout, part_count
from directmail.textformat import LineEncoder


@dataclass
class StagedFile:
    """A file ready to deliver: its relative name at the destination and what it holds."""

    name: str
    path: Path
    rows: int
    bytes: int
    sha256: str

    def summary(self) -> dict:
        return {
            "name": PurePath(self.name).name,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


class _HashingFile:
    """A write-only file that hashes and counts what goes through it."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


@dataclass
class FileTexts:
    labels: list[str]
    header_note: str | None
    footer_note: str | None
    seed_lines: pa.Array | None = None  # proof rows written at the end of every part


class PartsWriter:
    def __init__(
        self,
        staging_dir: Path,
        layout: FileLayout,
        encoder: LineEncoder,
        texts: FileTexts,
        total_rows: int,
        split_threshold: int,
    ):
        self.staging_dir = staging_dir
        self.layout = layout
        self.encoder = encoder
        self.texts = texts
        self.seed_rows = len(texts.seed_lines) if texts.seed_lines is not None else 0
        # Seed rows are records too: a part never holds more than split_threshold of them in all.
        self.split_threshold = split_threshold - self.seed_rows
        self.parts = part_count(total_rows, self.split_threshold)
        self.files: list[StagedFile] = []
        self._index = 0
        self._rows_in_part = 0
        self._raw: BinaryIO | None = None
        self._hashing: _HashingFile | None = None
        self._archive: zipfile.ZipFile | None = None  # compression zip: the part's archive
        self._out: BinaryIO | None = None
        self._open_next_part()

    def write(self, lines: pa.Array) -> None:
        """Append a batch's finished lines, starting new parts at the threshold."""
        offset, length = 0, len(lines)
        while offset < length:
            if self._rows_in_part == self.split_threshold:
                self._close_part()
                self._open_next_part()
            take = min(length - offset, self.split_threshold - self._rows_in_part)
            self._out.write(self.encoder.lines(lines.slice(offset, take)))
            self._rows_in_part += take
            offset += take

    def close(self) -> list[StagedFile]:
        self._close_part()
        while self._index < self.parts:  # an empty extract still gets its (header-only) file
            self._open_next_part()
            self._close_part()
        return self.files

    def abort(self) -> None:
        """After a failure (a full disk): close the open part without keeping it, so that nothing is
        flushed into it again later; the caller removes the staging folder."""
        compressed = self._out if self._out is not self._hashing else None
        for handle in (compressed, self._archive, self._raw):
            if handle is not None:
                with contextlib.suppress(OSError, ValueError):
                    handle.close()
        self._out = self._raw = self._hashing = self._archive = None

    def _open_next_part(self) -> None:
        self._index += 1
        name = self.layout.part_name(self._index, self.parts)
        path = self.staging_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = path.open("wb")
        self._hashing = _HashingFile(self._raw)
        if self.layout.compression == "gzip":
            self._out = gzip.GzipFile(filename="", mode="wb", fileobj=self._hashing, mtime=0, compresslevel=6)
        elif self.layout.compression == "zip":
            self._archive, self._out = _open_zip_member(self._hashing, FileLayout.archive_member(name))
        else:
            self._out = self._hashing
        self._out.write(self.encoder.file_prefix)
        if self.texts.header_note is not None:
            self._out.write(self.encoder.note(self.texts.header_note))
        self._out.write(self.encoder.header(self.texts.labels))
        self._rows_in_part = 0
        self.files.append(StagedFile(name, path, 0, 0, ""))

    def _close_part(self) -> None:
        if self._out is None:
            return
        if self.seed_rows:
            self._out.write(self.encoder.lines(self.texts.seed_lines))
            self._rows_in_part += self.seed_rows
        if self.texts.footer_note is not None:
            self._out.write(self.encoder.note(self.texts.footer_note))
        if self._out is not self._hashing:
            self._out.close()  # gzip's trailer (zip: the member's data descriptor) into the hashing file
        if self._archive is not None:
            self._archive.close()  # the zip's central directory
        self._raw.close()
        staged = self.files[-1]
        staged.rows, staged.bytes, staged.sha256 = (
            self._rows_in_part,
            self._hashing.size,
            self._hashing.sha.hexdigest(),
        )
        self._out = self._raw = self._hashing = self._archive = None


# A zip member's time: the earliest a zip can say (its DOS date starts in 1980), the same in every run.
ZIP_MEMBER_TIME = (1980, 1, 1, 0, 0, 0)


def _open_zip_member(out: _HashingFile, member: str) -> tuple[zipfile.ZipFile, BinaryIO]:
    """A zip archive over `out` (which cannot seek: streamed) and its one member, open for writing."""
    archive = zipfile.ZipFile(out, mode="w")  # type: ignore[arg-type]  # write() is all it needs
    info = zipfile.ZipInfo(member, date_time=ZIP_MEMBER_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED  # deflate at zlib's default level (6)
    info.create_system = 3  # Unix, whatever the machine: the attributes below are Unix's
    info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
    return archive, archive.open(info, mode="w", force_zip64=True)  # type: ignore[return-value]


# How a warehouse says its disk is full: an OS error's text (DuckDB's IO Error, PostgreSQL's "could not
# write"), or DuckDB's limit on spilled data, which by default is the free space of its temp_directory.
_OUT_OF_SPACE = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT), "max_temp_directory_size")


def out_of_space(exc: BaseException) -> str | None:
    """The first line of an error that says the disk is full, or None."""
    if isinstance(exc, OSError):
        return os_problem(exc) if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    text = str(exc)
    return text.splitlines()[0] if any(marker in text for marker in _OUT_OF_SPACE) else None


def os_problem(exc: OSError) -> str:
    """An OS error in one line: its reason and errno name (`No space left on device (ENOSPC)`)."""
    name = errno.errorcode.get(exc.errno or 0)
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason} ({name})" if name else reason


def write_checksum(staging_dir: Path, staged: StagedFile) -> Path:
    """A sha256sum-format sidecar next to the staged file."""
    path = staging_dir / FileLayout.checksum_name(staged.name)
    path.write_bytes(f"{staged.sha256}  {Path(staged.name).name}\n".encode())
    return path


def write_manifest(staging_dir: Path, layout: FileLayout, document: dict) -> Path:
    path = staging_dir / layout.manifest_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return path
