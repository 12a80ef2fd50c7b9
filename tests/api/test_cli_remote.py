"""`predictflow predict --remote` against the local stack: the same lines as offline `predict`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from predictflow.cli import cli
from predictflow.local.stack import LocalStack
from tests.conftest import running_stack
from tests.fixtures import EVENTS, free_port


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack(server_port=free_port(), api_port=0) as stack:
        yield stack


@pytest.fixture(autouse=True)
def served(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handlers reach the served stack as `local up`'s do (conftest clears the variable)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", str(stack.endpoint_url))


@pytest.mark.parametrize("name", ["records-mixed.csv", "records-good.csv", "records-malformed.csv"])
def test_remote_predictions_are_the_offline_ones(stack: LocalStack, name: str) -> None:
    runner = CliRunner()
    offline = runner.invoke(cli, ["predict", str(EVENTS / name)])
    remote = runner.invoke(
        cli, ["--endpoint-url", str(stack.endpoint_url), "predict", "--remote", str(EVENTS / name)]
    )
    assert remote.exit_code == 0, remote.output
    assert remote.stdout == offline.stdout
    assert remote.stdout.count("\n") > 0 or name == "records-malformed.csv"
    # the same rejected lines, with the same reasons, on stderr
    assert [line for line in remote.stderr.splitlines() if ": " in line and ".csv:" in line] == [
        line for line in offline.stderr.splitlines() if ".csv:" in line
    ]


def test_remote_refuses_a_model_folder(stack: LocalStack) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--endpoint-url",
            str(stack.endpoint_url),
            "predict",
            "--remote",
            "--model",
            "model",
            str(EVENTS / "records-good.csv"),
        ],
    )
    assert result.exit_code == 2
    assert "--remote scores with the stack's active model" in result.output
