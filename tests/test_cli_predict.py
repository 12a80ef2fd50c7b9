"""`predictflow predict`: offline batch prediction from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from predictflow.cli import cli
from tests.fixtures import ADULT, ADULT_DATA, EVENTS


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_one_json_line_per_record_with_the_line_number(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["predict", str(EVENTS / "records-good.csv")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["line"] for line in lines] == [1, 2, 3, 4, 5]
    assert all(line["label"] in (">50K", "<=50K") and 0 < line["probability"] < 1 for line in lines)
    assert all(line["model_version"] == ADULT.model_version for line in lines)
    assert "5 predicted, 0 rejected" in result.stderr


def test_bad_lines_are_reported_and_the_run_goes_on(runner: CliRunner, tmp_path: Path) -> None:
    output, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.txt"
    result = runner.invoke(
        cli, ["predict", str(EVENTS / "records-mixed.csv"), "-o", str(output), "--rejects", str(rejects)]
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["line"] for line in output.read_text().splitlines()] == [2, 3, 5]
    assert rejects.read_text().splitlines() == [
        f"{EVENTS / 'records-mixed.csv'}:4: InvalidValue: age: 'abc' is not a whole number",
        f"{EVENTS / 'records-mixed.csv'}:6: UnknownCategory: race: 'Martian' is not a known category",
    ]
    assert "3 predicted, 2 rejected" in result.stderr


def test_labelled_files_pass_actual_through_and_end_with_quality(runner: CliRunner, tmp_path: Path) -> None:
    sample = tmp_path / "labelled.csv"
    lines = ADULT_DATA.read_text().splitlines()[:2000]
    # The published test split writes its labels with a trailing period.
    sample.write_text("\n".join(line + "." if i % 2 else line for i, line in enumerate(lines)) + "\n")
    result = runner.invoke(cli, ["predict", str(sample), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert first["actual"] == "<=50K"
    assert "on 2000 labelled records: accuracy 0.8" in result.stderr
    auc = float(result.stderr.split("ROC AUC ")[1].split(",")[0])
    assert 0.9 < auc < 1.0


def test_a_missing_file_is_one_clear_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["predict", "no-such-file.csv"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.output
