"""`predictflow predict` reads its file a chunk at a time: the same batches, line numbers and
rejections as reading it whole, in a fraction of the memory."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predictflow import offline
from predictflow.errors import RecordError, RejectReason
from predictflow.features import check_matrix
from predictflow.pipeline.chunks import plan_chunks
from predictflow.predictors import EmbeddedPredictor
from predictflow.records import Layout, ParsedBatch, parse_chunk
from tests.fixtures import ADULT, ADULT_DATA, ARTICLE, HEADER

PREDICTOR = EmbeddedPredictor(ADULT)
RECORDS = [line.encode() for line in ADULT_DATA.read_text().splitlines()[:200] if line.strip()]


def whole_file_batches(path: Path, batch_bytes: int) -> Iterator[ParsedBatch]:
    """How `batches` read a file before: whole, then cut by the same planner."""
    data = path.read_bytes()
    layout: Layout | None = None
    for chunk in plan_chunks([data], batch_bytes):
        batch = parse_chunk(
            data[chunk["start"] : chunk["end"]], ADULT.schema, chunk["first_line"], layout=layout
        )
        layout = layout or batch.layout
        yield batch


def outcomes(batches: Iterator[ParsedBatch]) -> list[tuple[Any, ...]]:
    return [
        (b.lines, b.features.tobytes(), b.actual, b.ids, b.rejections, b.layout, b.ignored_columns)
        for b in batches
    ]


LINES = st.sampled_from(
    [
        *RECORDS[:20],
        ARTICLE.encode(),
        b"",
        b"   ",
        b"\r",
        ARTICLE.replace("108435", "abc").encode(),
        ARTICLE.replace("White", "Martian").encode(),
        ARTICLE.encode() + b", <=50K, extra",
        "22, Local-gov, 108435, Mästers".encode(),
        b"x" * 300,  # longer than a chunk in most draws: a chunk of its own
        b"\xff\xfe not utf-8",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    head=st.sampled_from(
        [b"", b"\xef\xbb\xbf", HEADER.encode() + b"\n", b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n"]
    ),
    lines=st.lists(LINES, max_size=60),
    crlf=st.booleans(),
    last_newline=st.booleans(),
    batch_bytes=st.integers(64, 4096),
    block_bytes=st.integers(1, 5000),
)
def test_reading_a_chunk_at_a_time_gives_what_reading_the_whole_file_gave(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    head: bytes,
    lines: list[bytes],
    crlf: bool,
    last_newline: bool,
    batch_bytes: int,
    block_bytes: int,
) -> None:
    path = tmp_path / "records.csv"
    path.write_bytes(head + (b"\r\n" if crlf else b"\n").join(lines) + (b"\n" if last_newline else b""))
    monkeypatch.setattr(offline, "BATCH_BYTES", batch_bytes)
    monkeypatch.setattr(offline, "PLAN_BLOCK_BYTES", block_bytes)
    parsed = list(offline.batches(path, PREDICTOR))
    streamed = outcomes(iter(parsed))
    assert streamed == outcomes(whole_file_batches(path, batch_bytes))
    for batch in parsed:
        # What lets predict_file score without a second check_matrix pass.
        check_matrix(ADULT.schema, batch.features)
    assert sum(len(b[0]) + len(b[4]) for b in streamed) >= sum(1 for line in lines if line.strip(b" \t\r"))


def test_the_file_is_not_held_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Peak memory follows the batch, not the file: 8 MB of records in 64 KiB batches."""
    path = tmp_path / "big.csv"
    body = b"\n".join(RECORDS) + b"\n"
    path.write_bytes(body * (8_000_000 // len(body)))
    size = path.stat().st_size
    monkeypatch.setattr(offline, "BATCH_BYTES", 64 * 1024)
    monkeypatch.setattr(offline, "PLAN_BLOCK_BYTES", 256 * 1024)
    out = io.StringIO()
    tracemalloc.start()
    try:
        for batch in offline.batches(path, PREDICTOR):
            out.write(str(len(batch)))  # what predict_file keeps of a batch is written out
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size / 4, f"peak {peak / 1e6:.1f} MB reading {size / 1e6:.1f} MB"


def read_in_small_chunks(path: Path, body: bytes, monkeypatch: pytest.MonkeyPatch) -> Iterator[ParsedBatch]:
    """`path` written with `body`, and its batches of 1 KiB chunks, not yet read."""
    path.write_bytes(body)
    monkeypatch.setattr(offline, "BATCH_BYTES", 1024)
    return offline.batches(path, PREDICTOR)


def test_a_file_that_shrinks_while_it_is_read_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "records.csv"
    batches = read_in_small_chunks(path, b"\n".join(RECORDS) + b"\n", monkeypatch)
    first = next(batches)
    assert first.lines[0] == 1
    path.write_bytes(b"\n".join(RECORDS[:5]) + b"\n")
    with pytest.raises(offline.FileChanged, match="shorter"):
        list(batches)


def test_a_file_that_grows_after_its_last_chunk_was_read_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "records.csv"
    batches = read_in_small_chunks(path, b"\n".join(RECORDS) + b"\n", monkeypatch)
    read = 0
    while read < len(RECORDS):
        read += len(next(batches))
    with path.open("ab") as grown:  # the last chunk's records are out, the run has not ended
        grown.write(RECORDS[0] + b"\n")
    with pytest.raises(offline.FileChanged, match="changed while it was read"):
        next(batches)


def test_a_file_cut_mid_line_while_it_is_planned_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are cut as the planner reads on: a file shortened meanwhile (here mid-line) must
    not be scored as if it had always ended there."""
    path = tmp_path / "records.csv"
    monkeypatch.setattr(offline, "PLAN_BLOCK_BYTES", 2048)
    batches = read_in_small_chunks(path, (b"\n".join(RECORDS) + b"\n") * 40, monkeypatch)
    next(batches)
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2 + 7)
    with pytest.raises(offline.FileChanged):
        list(batches)


def test_an_empty_file_is_no_records(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    out = io.StringIO()
    report = offline.predict_file(path, out, None, ADULT)
    assert (report.predicted, report.rejected, out.getvalue()) == (0, 0, "")


def test_a_matrix_the_parser_did_not_build_is_still_checked() -> None:
    """predict_file skips check_matrix only for the parser's own matrices; any other caller's
    bad matrix is still a typed validation error, not a model error or a silent score."""
    good = parse_chunk(ARTICLE.encode() + b"\n", ADULT.schema).features
    assert PREDICTOR.scores(good).shape == (1, 2)
    bad = good.copy()
    bad[0, ADULT.schema.feature_names.index("race")] = 99  # no such category
    with pytest.raises(RecordError) as raised:
        PREDICTOR.scores(bad)
    assert raised.value.reason is RejectReason.UNKNOWN_CATEGORY
    with pytest.raises(RecordError):
        PREDICTOR.scores(good[:, :-1])  # a field short
