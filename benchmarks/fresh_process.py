"""Timing code in a fresh Python process, as a user's first command would run it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def seconds_printed_by(code: str, cwd: Path, environment: Mapping[str, str]) -> float:
    """Run `code` in a new interpreter; it prints the seconds it measured as its last line."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=dict(environment),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])
