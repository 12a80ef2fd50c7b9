"""What importing a part of predictflow brings with it: the stream sources and `predictflow send`
need the API's errors and request models, not its routes and powertools' resolver."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import predictflow.api


def imported_by(statement: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    modules: list[str] = json.loads(done.stdout)
    return modules


@pytest.mark.parametrize(
    "module", ["predictflow.sources.messages", "predictflow.api.errors", "predictflow.cli.send"]
)
def test_the_api_errors_and_models_come_without_the_routes(module: str) -> None:
    modules = imported_by(f"import {module}")
    assert "predictflow.api.errors" in modules
    assert [m for m in modules if m == "predictflow.api.app" or m.startswith("aws_lambda_powertools")] == []


def test_the_api_package_still_names_everything_it_did() -> None:
    from predictflow.api import (
        AML_PREDICT_PATH,
        MAX_BODY_BYTES,
        MAX_RECORDS,
        PREDICT_PATH,
        VERSION_HEADER,
        Scored,
        Scorer,
        create_app,
    )
    from predictflow.api.app import create_app as routes

    assert create_app is routes
    assert (Scored.__module__, Scorer.__module__) == ("predictflow.api.scoring", "predictflow.api.scoring")
    assert all(isinstance(path, str) for path in (PREDICT_PATH, AML_PREDICT_PATH, VERSION_HEADER))
    assert MAX_RECORDS > 0
    assert MAX_BODY_BYTES > 0
    assert set(predictflow.api.__all__) == set(predictflow.api._HOMES)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = predictflow.api.nothing  # type: ignore[attr-defined]
