"""The Lambda layer's size as `sam build` makes it for the template's runtime.

    python benchmarks/package_size.py

Runs src/build_layer.py (what `sam build` runs, through src/Makefile) into a temporary
folder: requirements for Python 3.12 on Linux arm64, the predictflow package, minus the AWS SDK
the Lambda runtime provides. Reports the unzipped size, which is what the Predict function
carries beside its 2 KB handler. Needs the package index (downloads about 40 MB).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from build_layer import build  # noqa: E402


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        layer = build(Path(scratch) / "python")
        entries = [entry for entry in layer.iterdir() if not entry.name.endswith(".dist-info")]
        sizes = {entry.name: size_of(entry) for entry in entries}
        total = size_of(layer)
    for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:8]:
        print(f"{name:32} {size / 1e6:7.1f} MB")
    print(f"{'layer, unzipped':32} {total / 1e6:7.1f} MB  (Predict's dependencies; budget 150 MB)")


if __name__ == "__main__":
    main()
