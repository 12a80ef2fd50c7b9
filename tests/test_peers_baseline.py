"""benchmarks/peers.py --baseline: the same command with another checkout's src, checked to
write the same bytes."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import peers  # noqa: E402


def test_the_baseline_runs_predict_with_its_own_source_first(tmp_path: Path) -> None:
    data, baseline = tmp_path / "records.csv", tmp_path / "old" / "src"
    run = peers.commands(data, tmp_path, ["polars"], baseline)
    assert list(run) == [peers.PREDICTFLOW, peers.SEQUENTIAL, peers.BASELINE, "polars"]
    assert run[peers.BASELINE][:-1] == run[peers.PREDICTFLOW][:-1]  # the same command, its own output
    assert run[peers.BASELINE][-1] != run[peers.PREDICTFLOW][-1]
    path = peers.with_source(baseline)["PYTHONPATH"].split(":")
    assert path[0] == str(baseline)
    assert peers.BASELINE not in peers.commands(data, tmp_path, ["polars"])


def test_outputs_are_compared_byte_for_byte(tmp_path: Path) -> None:
    one, same, other, shorter = (tmp_path / name for name in ("one", "same", "other", "shorter"))
    body = b'{"line":1,"probability":0.1}\n' * 100_000
    one.write_bytes(body)
    same.write_bytes(body)
    other.write_bytes(body[:-3] + b"2}\n")
    shorter.write_bytes(body[:-1])
    assert peers.same_bytes(one, same)
    assert not peers.same_bytes(one, other)
    assert not peers.same_bytes(one, shorter)


def test_jobs_goes_to_this_checkouts_predictflow_and_jobs_1_runs_beside_it(tmp_path: Path) -> None:
    data, baseline = tmp_path / "records.csv", tmp_path / "old" / "src"
    run = peers.commands(data, tmp_path, [], baseline, jobs=3)
    assert run[peers.PREDICTFLOW][-5:-2] == [str(data), "--jobs", "3"]
    assert run[peers.SEQUENTIAL][-5:-2] == [str(data), "--jobs", "1"]
    assert "--jobs" not in run[peers.BASELINE]  # a checkout from before --jobs refuses it
    assert peers.SEQUENTIAL not in peers.commands(data, tmp_path, [], jobs=1, sequential=False)
