"""Chunk plans: whole lines, numbered, tiled, and no chunk bigger than about two chunks' worth of
bytes unless it is one long line on its own (which Validate streams)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from predictflow.pipeline import chunks as chunking
from predictflow.pipeline.chunks import MAX_CHUNK_LINES, cut_chunks, plan_chunks


def reference_plan(data: bytes, chunk_bytes: int, chunk_lines: int = MAX_CHUNK_LINES) -> list[dict[str, Any]]:
    """The same rules, written line by line for clarity rather than speed."""
    chunks: list[dict[str, Any]] = []
    start, start_line, position = 0, 1, 0

    def emit(begin: int, end: int, first: int, single: bool = False) -> None:
        chunk: dict[str, Any] = {"index": len(chunks) + 1, "first_line": first, "start": begin, "end": end}
        if single:
            chunk["single_line"] = True
        chunks.append(chunk)

    lines = data.splitlines(keepends=True) if b"\r" not in data else _lf_lines(data)
    for number, text in enumerate(lines, start=1):
        end = position + len(text)
        if len(text) > chunk_bytes:
            if position > start:
                emit(start, position, start_line)
            emit(position, end, number, single=True)
            start, start_line = end, number + 1
        elif text.endswith(b"\n") and (end - start >= chunk_bytes or number - start_line + 1 >= chunk_lines):
            emit(start, end, start_line)
            start, start_line = end, number + 1
        position = end
    if position > start or not chunks:
        emit(start, position, start_line)
    return chunks


def _lf_lines(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(0, 60), max_size=40),
    st.sampled_from([1, 3, 7, 64, 1000]),
    st.integers(4, 50),
    st.booleans(),
    st.sampled_from([b"x", b"\r", b" "]),
    st.sampled_from([1, 2, 3, 5, MAX_CHUNK_LINES]),
)
def test_plans_match_the_reference_and_keep_their_promises(
    lengths: list[int], block: int, chunk_bytes: int, final_newline: bool, filler: bytes, chunk_lines: int
) -> None:
    data = b"\n".join(filler * length for length in lengths) + (b"\n" if final_newline and lengths else b"")
    blocks = [data[i : i + block] for i in range(0, len(data), block)] or [b""]
    with patch.object(chunking, "MAX_CHUNK_LINES", chunk_lines):
        chunks = plan_chunks(blocks, chunk_bytes)
    assert chunks == reference_plan(data, chunk_bytes, chunk_lines)
    assert chunks[0]["start"] == 0
    assert chunks[-1]["end"] == len(data)
    for before, after in itertools.pairwise(chunks):
        assert before["end"] == after["start"]
        assert data[before["end"] - 1 : before["end"]] == b"\n"
    for chunk in chunks:
        body = data[chunk["start"] : chunk["end"]]
        assert chunk["first_line"] == data[: chunk["start"]].count(b"\n") + 1
        if chunk.get("single_line"):
            assert b"\n" not in body[:-1]
        else:
            assert len(body) < 2 * chunk_bytes
            assert body.count(b"\n") <= chunk_lines


def test_a_55_mb_line_of_carriage_returns_is_a_chunk_of_its_own() -> None:
    data = b"39, State-gov\n" * 3 + b"\r" * 55_000_000 + b"\n" + b"50, Private\n"
    blocks = [data[i : i + 8 * 1024 * 1024] for i in range(0, len(data), 8 * 1024 * 1024)]
    chunks = plan_chunks(blocks, 1024 * 1024)
    assert [(c["first_line"], c.get("single_line", False)) for c in chunks] == [
        (1, False),
        (4, True),
        (5, False),
    ]
    assert chunks[1]["end"] - chunks[1]["start"] == 55_000_001


def test_chunks_are_given_as_soon_as_the_blocks_read_close_them() -> None:
    """`predict --jobs` scores a chunk while the planner reads on: a chunk must not wait for
    the rest of the file."""
    read: list[int] = []

    def blocks() -> Iterator[bytes]:
        for number in range(5):
            read.append(number)
            yield b"x" * 99 + b"\n"

    cut = cut_chunks(blocks(), 150)
    assert next(cut)["end"] == 200
    assert read == [0, 1]
    assert list(cut) == plan_chunks([b"x" * 99 + b"\n"] * 5, 150)[1:]
    assert read == [0, 1, 2, 3, 4]


def test_a_chunk_holds_at_most_max_chunk_lines_lines_however_short() -> None:
    """Each line can be a dead letter: the lines bound a Route's work as the bytes do not."""
    data = b"x\n" * (2 * MAX_CHUNK_LINES + 10)
    chunks = plan_chunks(
        [data[i : i + 8 * 1024 * 1024] for i in range(0, len(data), 8 * 1024 * 1024)], 4 << 20
    )
    assert [(c["first_line"], c["end"] - c["start"]) for c in chunks] == [
        (1, 2 * MAX_CHUNK_LINES),
        (MAX_CHUNK_LINES + 1, 2 * MAX_CHUNK_LINES),
        (2 * MAX_CHUNK_LINES + 1, 20),
    ]
