"""Cutting a file into chunks at line breaks: shared by Fetch and offline scoring, and free of
AWS code so that `predictflow predict` does not import the pipeline's storage.

A chunk is about `chunk_bytes` of whole lines (lines end at LF, see `records.py`). A line
longer than that gets a chunk of its own, marked `single_line`, so that no chunk holds more
than about two chunks' worth of bytes besides one such line: Validate reads a `single_line`
chunk as a stream and rejects the line without holding it (a 55 MB line of carriage returns
would otherwise take about 17 times its size in memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def plan_chunks(blocks: Iterable[bytes], chunk_bytes: int) -> list[dict[str, Any]]:
    """Cut a stream into chunks and number their first lines. Reads the stream once and holds
    one block at a time; the work per block is a few C-level searches and counts."""
    return list(cut_chunks(blocks, chunk_bytes))


def cut_chunks(blocks: Iterable[bytes], chunk_bytes: int) -> Iterator[dict[str, Any]]:
    """`plan_chunks`, each chunk given as soon as the blocks read so far close it."""
    planner = _Planner(chunk_bytes)
    for block in blocks:
        done = len(planner.chunks)
        planner.feed(block)
        yield from planner.chunks[done:]
    done = len(planner.chunks)
    yield from planner.finish()[done:]


class _Planner:
    def __init__(self, chunk_bytes: int) -> None:
        self.chunk_bytes = chunk_bytes
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
            elif end - self.start >= self.chunk_bytes:
                self._emit(end)
                self.start, self.start_line = end, self.line + 1
            # Lines that end well before the chunk could close are counted in one C-level pass.
            wanted = self.start + self.chunk_bytes - 1 - self.offset
            position = newline + 1
            self.line += 1
            self.line_start = end
            if wanted > position:
                last = block.rfind(b"\n", position, min(wanted, len(block)))
                if last >= 0:
                    self.line += block.count(b"\n", position, last + 1)
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
