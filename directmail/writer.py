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
from typing import IO, BinaryIO, Protocol

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

    def close(self) -> None:
        self.raw.close()


class _Output(Protocol):
    """Where a part's bytes go: its hashed file itself, or gzip or a zip member over it."""

    def write(self, data: bytes | memoryview, /) -> int: ...

    def close(self) -> None: ...


@dataclass
class _Part:
    """The open part: its file (hashed and counted) and the output its lines are written to."""

    file: _HashingFile
    out: _Output
    archive: zipfile.ZipFile | None = None  # compression zip: the part's archive


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
        self._part: _Part | None = None
        self._open_next_part()

    @property
    def _current(self) -> _Part:
        if self._part is None:
            raise ValueError("I/O operation on a closed parts writer")
        return self._part

    def write(self, lines: pa.Array) -> None:
        """Append a batch's finished lines, starting new parts at the threshold."""
        offset, length = 0, len(lines)
        while offset < length:
            if self._rows_in_part == self.split_threshold:
                self._close_part()
                self._open_next_part()
            take = min(length - offset, self.split_threshold - self._rows_in_part)
            self._current.out.write(self.encoder.lines(lines.slice(offset, take)))
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
        if (part := self._part) is not None:
            handles: list[_Output | zipfile.ZipFile | None] = [
                part.out if part.out is not part.file else None,
                part.archive,
                part.file,
            ]
            for handle in handles:
                if handle is not None:
                    with contextlib.suppress(OSError, ValueError):
                        handle.close()
        self._part = None

    def _open_next_part(self) -> None:
        self._index += 1
        name = self.layout.part_name(self._index, self.parts)
        path = self.staging_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        file = _HashingFile(path.open("wb"))
        self._part = part = _Part(file, file)  # abort() closes the file if what follows fails
        if self.layout.compression == "gzip":
            part.out = gzip.GzipFile(filename="", mode="wb", fileobj=file, mtime=0, compresslevel=6)
        elif self.layout.compression == "zip":
            part.archive, part.out = _open_zip_member(file, FileLayout.archive_member(name))
        part.out.write(self.encoder.file_prefix)
        if self.texts.header_note is not None:
            part.out.write(self.encoder.note(self.texts.header_note))
        part.out.write(self.encoder.header(self.texts.labels))
        self._rows_in_part = 0
        self.files.append(StagedFile(name, path, 0, 0, ""))

    def _close_part(self) -> None:
        part = self._part
        if part is None:
            return
        if self.seed_rows:
            part.out.write(self.encoder.lines(self.texts.seed_lines))
            self._rows_in_part += self.seed_rows
        if self.texts.footer_note is not None:
            part.out.write(self.encoder.note(self.texts.footer_note))
        if part.out is not part.file:
            part.out.close()  # gzip's trailer (zip: the member's data descriptor) into the hashing file
        if part.archive is not None:
            part.archive.close()  # the zip's central directory
        part.file.close()
        staged = self.files[-1]
        staged.rows, staged.bytes, staged.sha256 = (
            self._rows_in_part,
            part.file.size,
            part.file.sha.hexdigest(),
        )
        self._part = None


# A zip member's time: the earliest a zip can say (its DOS date starts in 1980), the same in every run.
ZIP_MEMBER_TIME = (1980, 1, 1, 0, 0, 0)


def _open_zip_member(out: _HashingFile, member: str) -> tuple[zipfile.ZipFile, IO[bytes]]:
    """A zip archive over `out` (which cannot seek: streamed) and its one member, open for writing. The
    archive never closes `out` (a file object passed in is the caller's): the part closes it."""
    archive = zipfile.ZipFile(out, mode="w")
    info = zipfile.ZipInfo(member, date_time=ZIP_MEMBER_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED  # deflate at zlib's default level (6)
    info.create_system = 3  # Unix, whatever the machine: the attributes below are Unix's
    info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
    return archive, archive.open(info, mode="w", force_zip64=True)


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
