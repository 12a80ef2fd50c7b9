"""The README's commands run as written.

A fenced block right after a `<!-- runnable -->` comment is run as one bash script (`set -euo
pipefail`) from the repository's root, with the virtualenv's `bin` first on PATH (as after `source
.venv/bin/activate`); `<!-- runnable: local-stack -->` runs it against a `predictflow local up`
started for the test. Every command must exit 0. Blocks without the comment hold placeholders
(`EXECUTION`, `<name>`) or need an AWS account; the comment is what says which is which.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures import ROOT, free_port

README = ROOT / "README.md"
MARKER = re.compile(
    r"<!-- runnable(?::\s*(?P<needs>[\w-]+))? -->\s*\n```(?:bash|sh)?\n(?P<body>.*?)\n```", re.S
)


@dataclass(frozen=True)
class Block:
    line: int
    needs: str
    commands: tuple[str, ...]


def runnable_blocks(text: str) -> list[Block]:
    blocks = []
    for match in MARKER.finditer(text):
        commands = []
        for raw in match["body"].splitlines():
            command = _without_comment(raw).strip()
            if command:
                commands.append(command)
        blocks.append(Block(text.count("\n", 0, match.start()) + 1, match["needs"] or "", tuple(commands)))
    return blocks


def _without_comment(line: str) -> str:
    """The line up to its trailing comment: README comments follow the command after spaces."""
    return re.split(r"\s+#\s", line, maxsplit=1)[0]


BLOCKS = runnable_blocks(README.read_text())


def test_the_readme_marks_the_blocks_it_promises_to_run() -> None:
    kinds = {block.needs for block in BLOCKS}
    assert {"", "local-stack"} <= kinds, kinds
    assert sum(len(block.commands) for block in BLOCKS) >= 10


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PREDICTFLOW_CACHE_DIR"] = str(tmp_path_factory.mktemp("readme-cache"))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "PREDICTFLOW_STACK"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def local_stack(environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    port = free_port()
    state = tmp_path_factory.mktemp("readme-state")
    server = subprocess.Popen(
        ["predictflow", "local", "up", "--port", str(port), "--console-port", "0", "--state-dir", str(state)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready = subprocess.run(
                ["predictflow", "--local", "executions", "-o", "json"],
                cwd=ROOT, env=environment, capture_output=True, text=True,
            )  # fmt: skip
            if ready.returncode == 0:
                break
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            time.sleep(1)
        else:
            pytest.fail("local up did not become ready in 120 s")
        yield
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_a_runnable_block_of_the_readme_runs_as_written(
    block: Block, environment: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if block.needs == "local-stack":
        request.getfixturevalue("local_stack")
    # One script per block, so a line may use what an earlier one set; it stops at the first
    # command that fails, and `set -x` shows which.
    script = "set -euo pipefail -x\n" + "\n".join(block.commands) + "\n"
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"README.md:{block.line}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
