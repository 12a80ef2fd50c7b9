"""Cutting a file into chunks at line breaks: shared by Fetch and offline scoring, and free of
AWS code so that `predictflow predict` does not import the pipeline's storage.

A chunk is about `chunk_bytes` of whole lines (lines end at LF, see `records.py`), and at most
MAX_CHUNK_LINES of them. A line
longer than that gets a chunk of its own, marked `single_line`, so that no chunk holds more
than about two chunks' worth of bytes besides one such line: Validate reads a `single_line`
chunk as a stream and rejects the line without holding it (a 55 MB line of carriage returns
would otherwise take about 17 times its size in memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

MAX_CHUNK_LINES: Final = 65_536
"""The most lines a chunk holds, whatever its bytes: every line of a chunk can become a dead
letter, which Route writes 25 to a request, so the lines bound a Route's work as the bytes do
not. A 4 MiB chunk holds about 36,000 census records, but 2 million lines of "x"; their dead
letters took Route past its 120 s timeout (200,000 took 50 s on the local stack), and the file
ended unfinished. 65,536 dead letters are about 15 s of Route's time on the local stack."""


def plan_chunks(blocks: Iterable[bytes], chunk_bytes: int) -> list[dict[str, Any]]:
    """Cut a stream into chunks and number their first lines. Reads the stream once and holds
    one block at a time; the work per block is a few C-level searches and counts."""
    return list(cut_chunks(blocks, chunk_bytes))


def cut_chunks(blocks: Iterable[bytes], chunk_bytes: int) -> Iterator[dict[str, Any]]:
    """`plan_chunks`, each chunk given as soon as the blocks read so far close it."""
    planner = _Planner(chunk_bytes, MAX_CHUNK_LINES)
    for block in blocks:
        done = len(planner.chunks)
        planner.feed(block)
        yield from planner.chunks[done:]
    done = len(planner.chunks)
    yield from planner.finish()[done:]


class _Planner:
    def __init__(self, chunk_bytes: int, chunk_lines: int) -> None:
        self.chunk_bytes = chunk_bytes
        self.chunk_lines = chunk_lines
        self.chunks: list[dict[str, Any]] = []
        self.start, self.start_line = 0, 1  # the open chunk
        self.offset = 0  # where the current block starts in the stream
        self.line_start, self.line = 0, 1  # where the current line starts, and its number

    def _emit(self, end: int, *, single_line: bool = False) -> None:
        chunk: dict[str, Any] = {
            "index": len(self.chunks) + 1,
            "first_line": self.start_line,
            "start": self.start,
            "end": end,
        }
        if single_line:
            chunk["single_line"] = True
        self.chunks.append(chunk)

    def feed(self, block: bytes) -> None:
        position = 0
        while True:
            newline = block.find(b"\n", position)
            if newline < 0:
                break
            end = self.offset + newline + 1  # where the line that ends here ends
            if end - self.line_start > self.chunk_bytes:
                # A long line: close the chunk before it, then give it a chunk of its own.
                if self.line_start > self.start:
                    self._emit(self.line_start)
                    self.start, self.start_line = self.line_start, self.line
                self._emit(end, single_line=True)
                self.start, self.start_line = end, self.line + 1
            elif end - self.start >= self.chunk_bytes or self.line - self.start_line + 1 >= self.chunk_lines:
                self._emit(end)
                self.start, self.start_line = end, self.line + 1
            # Lines that end well before the chunk could close are counted in one C-level pass,
            # up to the line that would fill the chunk's count of lines.
            wanted = self.start + self.chunk_bytes - 1 - self.offset
            position = newline + 1
            self.line += 1
            self.line_start = end
            if wanted > position:
                last = block.rfind(b"\n", position, min(wanted, len(block)))
                skipped = block.count(b"\n", position, last + 1) if last >= 0 else 0
                room = self.chunk_lines - 1 - (self.line - self.start_line)
                if skipped > room:
                    skipped = max(room, 0)
                    last = _nth_line_feed(block, position, skipped)
                if skipped:
                    self.line += skipped
                    self.line_start = self.offset + last + 1
                    position = last + 1
        self.offset += len(block)

    def finish(self) -> list[dict[str, Any]]:
        if self.offset > self.start or not self.chunks:
            tail_is_long = self.offset - self.line_start > self.chunk_bytes
            if tail_is_long and self.line_start > self.start:
                self._emit(self.line_start)
                self.start, self.start_line = self.line_start, self.line
            self._emit(self.offset, single_line=tail_is_long)
        return self.chunks


def _nth_line_feed(block: bytes, start: int, count: int) -> int:
    """Where the `count`-th line feed from `start` is in `block` (`count` >= 1, and there are
    that many); -1 for a count of 0."""
    at = start - 1
    for _ in range(count):
        at = block.find(b"\n", at + 1)
    return at
