"""What a Lambda container imports at cold start: the predict handler with its model loads no
AWS SDK client code, and AWS calls are still traced once a container makes its first client."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.fixtures import HANDLER_ENVIRONMENT, ROOT

# As Lambda runs a handler with active tracing: the X-Ray SDK and powertools' Tracer read these.
LAMBDA_ENVIRONMENT = {k: v for k, v in HANDLER_ENVIRONMENT.items() if k != "POWERTOOLS_TRACE_DISABLED"} | {
    "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "predict"),
    "AWS_LAMBDA_FUNCTION_NAME": "predict",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    "AWS_DEFAULT_REGION": "us-east-1",
    "PYTHONPATH": str(ROOT / "src"),
}

COLD_START = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", "functions/predict/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.bundles.predictor(module.bundles.active_version())
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore"))
from predictflow.pipeline.runtime import LazyClient
LazyClient("s3").meta  # the container's first client
from aws_xray_sdk.core import patcher
patched = "botocore" in patcher._PATCHED_MODULES
print(json.dumps({"loaded": loaded, "patched_after_first_client": patched}))
"""


def run_cold_start() -> dict[str, object]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "PREDICTFLOW_"))}
    out = subprocess.run(
        [sys.executable, "-c", COLD_START],
        cwd=ROOT,
        env=environment | LAMBDA_ENVIRONMENT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_predict_handler_loads_its_model_without_the_aws_sdk_and_traces_from_the_first_client() -> None:
    result = run_cold_start()
    # botocore.exceptions (the error types the stores catch) is all of the SDK a cold start needs.
    assert not [m for m in result["loaded"] if m.startswith("boto3")]  # type: ignore[attr-defined]
    assert "botocore.client" not in result["loaded"]  # type: ignore[operator]
    assert result["patched_after_first_client"] is True
