"""A stack deployed with OnnxRuntime=Excluded: `model deploy` refuses a bundle that needs ONNX
Runtime before uploading it, and a bundle that got there anyway (deployed while the stack still
had ONNX Runtime) is dead-lettered with a typed error that says what to do, not an ImportError.

The local stack runs handlers in this process and ignores layers' contents, so ONNX Runtime is
hidden in a subprocess by a meta path finder once the deploys (which run the model on the
CLI's machine) are done, as a function without the layer would miss it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from predictflow.forest.runtime import platform_key
from tests.fixtures import ADULT, ROOT

SCRIPT = r"""
import json, sys, uuid
from importlib.abc import MetaPathFinder

class NoOnnxRuntime(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "onnxruntime":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

from predictflow.bundle import load_bundle
from predictflow.bundle.store import ModelStore
from predictflow.local.stack import LocalStack
from predictflow.service.models import ModelError, deploy
from predictflow.service.results import StackNames
from tests.fixtures import upload_and_wait

from pathlib import Path
needs_ort, compiled = Path(sys.argv[1]), Path(sys.argv[2])
report = {}
with LocalStack(parameters={"OnnxRuntime": "Excluded"}, function_logs="none") as stack:
    cloudformation = stack.client("cloudformation")
    (described,) = cloudformation.describe_stacks(StackName=stack.stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    setting = StackNames.from_outputs(outputs).onnx_runtime  # what the CLI passes
    store = ModelStore(stack.client("s3"), outputs["ModelBucketName"])
    try:
        deploy(store, needs_ort, onnx_runtime=setting)
    except ModelError as error:
        report["refused"] = str(error)
    report["stored_after_refusal"] = store.version_names()
    # The CLI's machine has ONNX Runtime (the deploy check runs the model); from here on, the
    # functions run without it, as without their ORT layer.
    blocker = NoOnnxRuntime()
    sys.meta_path.insert(0, blocker)
    for name in [name for name in sys.modules if name.split(".")[0] == "onnxruntime"]:
        del sys.modules[name]
    # What a deploy made while the stack still had ONNX Runtime left behind.
    bundle = load_bundle(needs_ort)
    store.upload(needs_ort, bundle.spec)
    store.activate(bundle.model_version)
    body = open(sys.argv[3], "rb").read()
    _, _, execution = upload_and_wait(stack, body)
    report["status"] = execution["status"]
    table = stack.client("dynamodb")
    items = table.scan(TableName=outputs["DeadLetterTableName"])["Items"]
    report["dead_letters"] = [
        {k: v.get("S") for k, v in item.items() if k in ("error_type", "error_message", "message")}
        for item in items if "error_type" in item
    ]
    sys.meta_path.remove(blocker)  # the CLI's machine again
    # The same model with its arm64 forest (the forest is not part of the version): accepted.
    report["accepted"] = deploy(store, compiled, onnx_runtime=setting).version
print(json.dumps(report))
"""


def without_forest(tmp_path: Path, machines: tuple[str, ...]) -> Path:
    folder = tmp_path / "-".join(machines)
    shutil.copytree(ADULT.location, folder)
    data = json.loads((folder / "bundle.json").read_text())
    for machine in machines:
        data["forest"]["libraries"].pop(machine)
    # A version of its own: the packaged one is served from the layer, not from the store.
    data["name"] = "adult-onnx"
    data["model_version"] = "adult-onnx-" + data["model_version"].rsplit("-", 1)[1]
    (folder / "bundle.json").write_text(json.dumps(data))
    return folder


def test_an_excluded_stack_refuses_a_bundle_needing_onnx_runtime_and_dead_letters_one_that_got_there(
    tmp_path: Path,
) -> None:
    # Without linux-aarch64 (Lambda's) nor this machine's library: ONNX Runtime would score it.
    needs_ort = without_forest(tmp_path, tuple({"linux-aarch64", platform_key()}))
    records = tmp_path / "records.csv"
    records.write_bytes((ROOT / "events" / "records-good.csv").read_bytes())
    environment = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(needs_ort), str(ADULT.location), str(records)],
        capture_output=True, text=True, env=environment, cwd=tmp_path, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "needs ONNX Runtime (it has no compiled forest for linux-aarch64" in report["refused"]
    assert "deploy the stack with OnnxRuntime=Included" in report["refused"]
    assert report["stored_after_refusal"] == [], "a refused bundle is never uploaded"
    assert report["accepted"] == ADULT.model_version, "a bundle with an arm64 forest deploys"
    assert report["dead_letters"], report
    for entry in report["dead_letters"]:
        assert entry["error_type"] == "PredictorModelError", entry
        text = json.dumps(entry)
        assert "deploy the stack with OnnxRuntime=Included" in text, entry
        assert "ModuleNotFoundError" not in text, entry
        assert "Traceback" not in text, entry
