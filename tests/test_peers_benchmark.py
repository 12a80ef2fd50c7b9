"""benchmarks/peers.py compares like with like: the peer script gives the model the same inputs as
predictflow's parser, and its predictions pass the benchmark's agreement check."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from predictflow.bundle import default_bundle
from predictflow.offline import predict_file
from predictflow.records import parse_chunk

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import peers  # noqa: E402

ROWS = 1_000


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first rows of the training data, missing markers (`?`) among them."""
    lines = (ROOT / "model" / "data" / "adult.data").read_bytes().split(b"\n")[:ROWS]
    assert sum(b"?" in line for line in lines) > 10
    path = tmp_path_factory.mktemp("peers") / "adult.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("reader", peers.readers_available())
def test_the_peer_encodes_as_predictflow_does(sample: Path, reader: str) -> None:
    fields = json.loads((peers.BUNDLE_DIR / "bundle.json").read_text())["fields"]
    read = peers.read_pyarrow if reader == "pyarrow" else peers.read_polars
    matrix = peers.encode(read(sample, [spec["name"] for spec in fields]), fields)
    expected = parse_chunk(sample.read_bytes(), default_bundle().schema).features
    assert matrix.dtype == np.float32
    assert matrix.flags.c_contiguous
    np.testing.assert_array_equal(matrix, expected)  # NaN where NaN


def test_the_peer_predicts_what_predictflow_predicts(sample: Path, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "predictflow.jsonl", tmp_path / "peer.jsonl"
    with ours.open("w") as out:
        report = predict_file(sample, out, None, default_bundle())
    assert report.predicted == ROWS
    peers.peer("polars", sample, theirs)
    check = peers.agreement(ours, theirs, ROWS)
    assert check["max_abs_probability_gap"] <= peers.TOLERANCE
    assert check["labels_differ"] == 0


def test_the_record_file_repeats_the_source_and_is_made_once(tmp_path: Path) -> None:
    source = tmp_path / "source.data"
    source.write_bytes(b"a\nb\n\n")
    path = peers.make_data(tmp_path / "data", 5, source)
    assert path.read_bytes() == b"a\nb\na\nb\na\n"
    made = path.stat().st_mtime_ns
    assert peers.make_data(tmp_path / "data", 5, source) == path
    assert path.stat().st_mtime_ns == made


@pytest.mark.parametrize("wrapper", [True, *([False] if peers.GNU_TIME.exists() else [])])
def test_a_process_is_measured_alone_not_with_the_benchmark(tmp_path: Path, wrapper: bool) -> None:
    ballast = b"\x01" * (200 * 1024 * 1024)  # this process's peak RSS, which a child's exec keeps
    usage = peers.run_measured(
        [sys.executable, "-S", "-c", "x = b'1' * (40 * 1024 * 1024)"],
        {},
        tmp_path / "child.log",
        wrapper=wrapper,
    )
    assert len(ballast) > 0
    assert 40 < usage.peak_rss_mib < 100
    assert 0 <= usage.cpu_s < usage.wall_s + 1
    assert usage.processes == 1
    assert 40 < usage.tree_peak_rss_mib < 100
    assert usage.tree_peak_rss_mib >= usage.peak_rss_mib  # the last 20 ms are not lost


# Three processes, each holding 60 MB at once for a while, then the parent waits for its two.
TREE = """
import os, time
x = b'1' * (60 * 1024 * 1024)
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        y = b'2' * (60 * 1024 * 1024)
        time.sleep(0.5)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


def test_a_process_tree_is_measured_as_the_sum_of_its_processes_peaks(tmp_path: Path) -> None:
    """A forked worker's memory is not in GNU time's %M (the largest process's alone): the
    sampler adds every process's own peak."""
    usage = peers.run_measured([sys.executable, "-S", "-c", TREE], {}, tmp_path / "tree.log")
    assert usage.processes == 3
    assert 60 < usage.peak_rss_mib < 180  # the largest process alone: a child's 60 MB and its parent's
    assert usage.tree_peak_rss_mib > 2 * usage.peak_rss_mib
