"""Streaming CSV reading: encoding and separator detection, records with their line and byte offset.

The file is read line by line in binary, so that the byte offset after each record
is known exactly (the resume cursor) and memory stays constant whatever its size.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from relance.imports.errors import ImportFileError
from relance.imports.options import SEPARATORS

CHUNK = 1 << 20
HEAD = 1 << 16  # bytes hashed to recognise the file again when resuming
FIELD_LIMIT = 1 << 20  # one field over 1 MB is an unclosed quote, not data

csv.field_size_limit(FIELD_LIMIT)


def check_encoding(name: str) -> str:
    try:
        codec = codecs.lookup(name)
        b"a".decode(codec.name)  # rot13, base64, …: codecs, but not from bytes to text
    except (LookupError, ValueError):
        raise ImportFileError(
            f"unknown encoding {name!r}: give utf-8, utf-8-sig or latin-1 (or any Python text encoding)"
        ) from None
    if codec.name in {"utf-16", "utf-32", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"}:
        raise ImportFileError(f"encoding '{name}' is not supported: save the file as UTF-8")
    return codec.name


def check_separator(text: str) -> str:
    by_name = {name: sep for sep, name in SEPARATORS.items()}
    value = {"\\t": "\t", "tab": "\t"}.get(text, by_name.get(text.lower(), text))
    if value not in SEPARATORS:
        raise ImportFileError(
            f"separator '{text}' is not supported: give one of , ; | or tab "
            "(names: comma, semicolon, pipe, tab)"
        )
    return value


@dataclass(frozen=True)
class Scan:
    encoding: str
    sha256: str | None


def scan(stream: IO[bytes], encoding: str | None, digest: bool) -> Scan:
    """One pass over the whole file: is it UTF-8 (else Latin-1), and its SHA-256 when asked."""
    start = stream.tell()
    head = stream.read(len(codecs.BOM_UTF8))
    stream.seek(start)
    if encoding is not None and not digest:
        return Scan(_with_bom(encoding, head), None)
    decoder = codecs.getincrementaldecoder("utf-8")() if encoding is None else None
    hasher = hashlib.sha256() if digest else None
    try:
        while chunk := stream.read(CHUNK):
            if hasher is not None:
                hasher.update(chunk)
            if decoder is not None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    decoder = None  # not UTF-8: Latin-1 reads any byte
                    encoding = "latin-1"
        if decoder is not None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                encoding = "latin-1"
    finally:
        stream.seek(start)
    return Scan(_with_bom(encoding or "utf-8", head), hasher.hexdigest() if hasher else None)


def _with_bom(encoding: str, head: bytes) -> str:
    # A BOM is not data: 'utf-8-sig' drops it from the first header name.
    return "utf-8-sig" if encoding == "utf-8" and head.startswith(codecs.BOM_UTF8) else encoding


def head_digest(stream: IO[bytes]) -> str:
    start = stream.tell()
    stream.seek(0)
    try:
        return hashlib.sha256(stream.read(HEAD)).hexdigest()
    finally:
        stream.seek(start)


def _outside_quotes(line: str) -> str:
    return "".join(part for index, part in enumerate(line.split('"')) if index % 2 == 0)


def detect_separator(first_line: str) -> str:
    """The one candidate separator the header line uses (outside quotes)."""
    bare = _outside_quotes(first_line)
    counts = {sep: bare.count(sep) for sep in SEPARATORS}
    present = {sep: n for sep, n in counts.items() if n}
    if not present:
        return ","  # one column: the separator does not matter
    if len(present) > 1:
        shown = ", ".join(f"{SEPARATORS[sep]} '{_show(sep)}' ({n}x)" for sep, n in present.items())
        raise ImportFileError(
            f"the header line mixes separators: {shown}; use one separator throughout the file, "
            "or give it with --separator",
            line=1,
        )
    return next(iter(present))


def _show(sep: str) -> str:
    return "\\t" if sep == "\t" else sep


@dataclass(frozen=True, slots=True)
class Record:
    line: int  # first line of the record in the file
    end: int  # byte offset just after the record
    next_line: int  # lines consumed so far
    fields: list[str]


class CsvReader:
    """Records of a file from a byte offset on, with line numbers; ImportFileError on broken CSV."""

    def __init__(
        self, stream: IO[bytes], encoding: str, separator: str, offset: int = 0, lines_before: int = 0
    ) -> None:
        self.stream = stream
        self.encoding = encoding
        self.separator = separator
        self.offset = offset
        self.lines = lines_before
        stream.seek(offset)
        # After the first line a BOM would be data: only the very start may carry one.
        self._decode = codecs.getdecoder(encoding if offset == 0 else encoding.replace("-sig", ""))
        self._reader = csv.reader(self._physical_lines(), delimiter=separator, quotechar='"', strict=True)

    def _physical_lines(self) -> Iterator[str]:
        while raw := self.stream.readline():
            self.offset += len(raw)
            self.lines += 1
            try:
                text = self._decode(raw)[0]
            except UnicodeDecodeError as error:
                raise ImportFileError(
                    f"byte {error.start + 1} of this line is not valid {self.encoding}: "
                    "give the file's encoding with --encoding (for example latin-1)",
                    line=self.lines,
                ) from None
            if self.offset == len(raw) and self.encoding == "utf-8-sig":
                self._decode = codecs.getdecoder("utf-8")
            yield text

    def __iter__(self) -> Iterator[Record]:
        return self

    def __next__(self) -> Record:
        first = self.lines + 1
        try:
            fields = next(self._reader)
        except csv.Error as error:
            raise ImportFileError(_explain(str(error), first, self.lines), line=self.lines) from None
        return Record(line=first, end=self.offset, next_line=self.lines, fields=fields)


def _explain(error: str, first: int, last: int) -> str:
    if "unexpected end of data" in error:
        return (
            f'a quoted field opened on line {first} is never closed: add the closing quote ("), '
            'or write a quote inside a quoted field twice ("")'
        )
    if "expected after" in error:
        return (
            "a closing quote is followed by other characters: a quote inside a quoted field must be "
            'written twice (""), or the whole field quoted'
        )
    if "field larger than field limit" in error:
        return (
            f"a field of the record starting on line {first} is larger than {FIELD_LIMIT // 1024} KB: "
            "probably a quote that is never closed"
        )
    if "new-line character" in error:
        return "a carriage return (\\r) inside a field: save the file with Windows or Unix line endings"
    return f"the CSV cannot be read ({error}) in the record starting on line {first}"


def first_line(stream: IO[bytes], encoding: str) -> str:
    start = stream.tell()
    try:
        raw = stream.readline()
    finally:
        stream.seek(start)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise ImportFileError(
            f"byte {error.start + 1} of the header is not valid {encoding}: give the file's encoding "
            "with --encoding (for example latin-1)",
            line=1,
        ) from None
