"""Cutting a file into chunks at line breaks: shared by Fetch and offline scoring, and free of
AWS code so that `predictflow predict` does not import the pipeline's storage."""

from __future__ import annotations

from collections.abc import Iterable


def plan_chunks(blocks: Iterable[bytes], chunk_bytes: int) -> list[dict[str, int]]:
    """Cut a stream into chunks of about `chunk_bytes`, each ending at a line break, and
    number their first lines. Reads the stream once and holds one block at a time."""
    chunks: list[dict[str, int]] = []
    start, start_line = 0, 1  # the open chunk: its offset and its first line
    offset, line = 0, 1  # the current block's offset; the line number at `position`
    for block in blocks:
        position = 0
        while (wanted := start + chunk_bytes - 1 - offset) < len(block):
            newline = block.find(b"\n", max(wanted, position))
            if newline < 0:
                break
            line += block.count(b"\n", position, newline + 1)
            end = offset + newline + 1
            chunks.append({"index": len(chunks) + 1, "first_line": start_line, "start": start, "end": end})
            start, start_line, position = end, line, newline + 1
        line += block.count(b"\n", position)
        offset += len(block)
    if offset > start or not chunks:
        chunks.append({"index": len(chunks) + 1, "first_line": start_line, "start": start, "end": offset})
    return chunks
