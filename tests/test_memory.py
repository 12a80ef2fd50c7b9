"""Chunk after chunk of one size, a process keeps the memory one chunk freed for the next,
rather than have the kernel map and zero it again (see `memory.retain_freed_memory`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fixtures import HANDLER_ENVIRONMENT, ROOT

# Three buffers of about 12 MiB made, written and freed five times, as a chunk's bytes, matrix
# and lines are; the page faults the five rounds cost are printed.
ROUNDS = """
import resource
import numpy as np

def one_round():
    buffers = [np.ones(1_500_000 + 1_000 * i) for i in range(3)]
    del buffers

one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    one_round()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

LOAD_HANDLER = """
import importlib.util
spec = importlib.util.spec_from_file_location("app", "functions/{name}/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""


def page_faults(setup: str) -> int:
    environment = os.environ | HANDLER_ENVIRONMENT | {"PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", setup + ROUNDS], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_freed_chunks_are_reused_not_faulted_in_again() -> None:
    plain = page_faults("")
    retained = page_faults("from predictflow.memory import retain_freed_memory\nretain_freed_memory()\n")
    assert plain > 2_000  # the kernel hands the pages over again each round
    assert retained < plain / 10


@pytest.mark.parametrize("name", ["fetch", "validate", "predict", "route"])
def test_each_chunk_step_keeps_its_memory_from_its_cold_start(name: str) -> None:
    assert page_faults(LOAD_HANDLER.format(name=name)) < 400
