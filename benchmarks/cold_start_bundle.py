"""Cold start with a deployed bundle: a fresh Predict container's first prediction.

    python benchmarks/cold_start_bundle.py [--runs 7] [--bundle DIR]

This process serves an S3 endpoint on loopback (moto's server), makes a model bucket and
deploys a bundle into it with `predictflow.service.models.deploy` (the Adult model renamed,
so that its version is not the packaged one and must come from the store; or `--bundle DIR`).
Then, `--runs` times, a new interpreter does what a Predict container does on its first
invocation and prints how long each part took:

- import: `functions/predict/app.py` (powertools, settings, the bundle cache; boto3 is lazy);
- pointer: the first S3 client, and `active.json` (as Fetch reads it);
- fetch+load: `bundle.json` and `model.onnx` from the store, digest verified, schema compiled;
- predictor: the ONNX Runtime session;
- first score: one record scored.

The figure is the median of the runs' totals (import to first score), measured inside the
child from before its first predictflow import; the interpreter's own start (the same for
every Lambda, and outside the handler's control) is reported apart, from the parent. The same
child with no model bucket configured (the packaged default, no S3) runs in turns with it, so
the difference the model store makes is read on the same machine at the same moment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
TARGET_SECONDS = 0.6

CHILD = """
import time
started = time.perf_counter()
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("predict_app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
imported = time.perf_counter()
version = app.bundles.active_version()
pointed = time.perf_counter()
bundle = app.bundles.bundle(version, with_model=True)
loaded = time.perf_counter()
predictor = app.bundles.predictor(version)
made = time.perf_counter()
row = np.full((1, bundle.schema.width), np.nan, dtype=np.float32)
row[0, :] = 0
predictor.scores(row, validated=True)
scored = time.perf_counter()
print(json.dumps({"version": version, "import": imported - started, "pointer": pointed - imported,
    "fetch+load": loaded - pointed, "predictor": made - loaded, "first score": scored - made,
    "total": scored - started}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def renamed_default(folder: Path) -> Path:
    """The packaged Adult bundle under another name, hence another version."""
    from predictflow.bundle import BUNDLE_FILE, DEFAULT_BUNDLE_DIR, BundleSpec
    from predictflow.bundle.format import content_version

    target = folder / "adult-deployed"
    shutil.copytree(DEFAULT_BUNDLE_DIR, target)
    spec = BundleSpec.from_json((target / BUNDLE_FILE).read_text()).to_dict()
    model_bytes = (target / spec["model"]["path"]).read_bytes()
    assert hashlib.sha256(model_bytes).hexdigest() == spec["model"]["sha256"]
    spec["name"] = "adult-deployed"
    spec["model_version"] = content_version("adult-deployed", spec, model_bytes)
    (target / BUNDLE_FILE).write_text(json.dumps(spec, indent=2))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--bundle", type=Path, help="A bundle folder [default: the Adult model, renamed].")
    arguments = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer

    from predictflow.bundle.store import ModelStore
    from predictflow.service.models import deploy

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(credentials)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        with tempfile.TemporaryDirectory() as scratch:
            bundle_dir = arguments.bundle or renamed_default(Path(scratch))
            deployed = deploy(ModelStore(s3, "models"), bundle_dir)
            size = sum(p.stat().st_size for p in bundle_dir.rglob("*") if p.is_file())
        environment = dict(os.environ) | credentials | child_environment(endpoint)
        runs: list[dict[str, Any]] = []
        packaged: list[dict[str, Any]] = []
        for _ in range(arguments.runs):  # in turns, so that both see the same machine
            runs.append(one_run(environment))
            packaged.append(one_run(environment | {"PREDICTFLOW_MODEL_BUCKET": ""}))
    finally:
        server.stop()
    assert all(run["version"] == deployed.version for run in runs), (
        "the child did not serve the deployed bundle"
    )
    report(f"bundle {deployed.version} ({size / 1e3:.0f} kB) from moto's S3 server on loopback", runs)
    report("for comparison: no model store, the packaged default from the layer", packaged)


def child_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "PYTHONPATH": str(ROOT / "src"),
        "PREDICTFLOW_MODEL_BUCKET": "models",
        "PREDICTFLOW_OUTPUT_BUCKET": "output",
        "PREDICTFLOW_PREDICTIONS_PREFIX": "predictions/",
        "PREDICTFLOW_WORK_PREFIX": "work/",
        "PREDICTFLOW_DEAD_LETTER_TABLE": "dead-letters",
        "PREDICTFLOW_LEDGER_TABLE": "ledger",
        "PREDICTFLOW_MAX_FILE_BYTES": "1000000",
        "PREDICTFLOW_CHUNK_BYTES": "4194304",
        "PREDICTFLOW_PREDICTOR_BACKEND": "embedded",
        "POWERTOOLS_SERVICE_NAME": "predictflow",
        "POWERTOOLS_METRICS_NAMESPACE": "predictflow",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


def one_run(environment: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT / "functions" / "predict" / "app.py")],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    run: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    run["process"] = wall
    return run


def report(title: str, runs: list[dict[str, Any]]) -> None:
    parts = ("import", "pointer", "fetch+load", "predictor", "first score", "total", "process")
    print(f"{title}; {len(runs)} fresh processes")
    print(f"{'part':14} {'median s':>9} {'min s':>7} {'max s':>7}")
    for part in parts:
        values = [run[part] for run in runs]
        print(f"{part:14} {statistics.median(values):9.3f} {min(values):7.3f} {max(values):7.3f}")
    total = statistics.median(run["total"] for run in runs)
    verdict = "within" if total <= TARGET_SECONDS else "OVER"
    print(
        f"cold start (import to first score), median: {total:.3f} s, {verdict} the {TARGET_SECONDS} s target"
    )
    print("process = the whole child, interpreter start and exit included, timed by this process\n")


if __name__ == "__main__":
    main()
