"""The Lambda layers' sizes as `sam build` makes them for the template's runtime.

    python benchmarks/package_size.py

Runs src/build_layer.py (what `sam build` runs, through src/Makefile) into a temporary
folder, for both layers: the core one (requirements for Python 3.12 on Linux arm64 but ONNX
Runtime, the predictflow package, minus the AWS SDK the Lambda runtime provides) and ONNX
Runtime's. Reports the unzipped sizes, and what a scoring function carries beside its 2 KB
handler with each OnnxRuntime setting. Needs the package index (downloads about 40 MB).
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
    totals = {}
    for title, only in (("PredictflowLayer", None), ("OnnxRuntimeLayer", "onnxruntime")):
        with tempfile.TemporaryDirectory() as scratch:
            layer = build(Path(scratch) / "python", only=only)
            entries = [entry for entry in layer.iterdir() if not entry.name.endswith(".dist-info")]
            sizes = {entry.name: size_of(entry) for entry in entries}
            totals[title] = size_of(layer)
        print(title)
        for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:6]:
            print(f"  {name:30} {size / 1e6:7.1f} MB")
        print(f"  {'unzipped':30} {totals[title] / 1e6:7.1f} MB")
    core, ort = totals["PredictflowLayer"], totals["OnnxRuntimeLayer"]
    print(f"{'OnnxRuntime=Excluded':32} {core / 1e6:7.1f} MB  (a scoring function's layers; goal 60 MB)")
    print(f"{'OnnxRuntime=Included':32} {(core + ort) / 1e6:7.1f} MB  (Lambda's budget 250 MB)")


if __name__ == "__main__":
    main()
