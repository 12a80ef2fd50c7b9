"""The SAM transform of template.yaml is cached by content: the same input is translated
once, any change to it is translated afresh, and a cache that cannot be written is said."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from predictflow.local import template
from tests.fixtures import ROOT


def project_copy(folder: Path) -> Path:
    """template.yaml with the folders it references, so that it can be edited."""
    shutil.copy(ROOT / "template.yaml", folder / "template.yaml")
    for name in ("functions", "src", "statemachine"):
        (folder / name).symlink_to(ROOT / name)
    return folder / "template.yaml"


def test_the_same_template_is_translated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICTFLOW_CACHE_DIR", str(tmp_path / "cache"))
    fresh = template.transform(ROOT / "template.yaml", "us-east-1")
    assert len(list((tmp_path / "cache" / "sam-transform").glob("*.json"))) == 1

    def no_translation(*_: object) -> None:
        raise AssertionError("translated again although the input did not change")

    monkeypatch.setattr(template, "_sam_translate", no_translation)
    assert template.transform(ROOT / "template.yaml", "us-east-1") == fresh


def test_a_changed_template_or_region_is_translated_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREDICTFLOW_CACHE_DIR", str(tmp_path / "cache"))
    path = project_copy(tmp_path)
    before = template.transform(path, "us-east-1").template
    path.write_text(path.read_text().replace("Timeout: 120", "Timeout: 121", 1))
    after = template.transform(path, "us-east-1").template
    assert after != before
    timeouts = {
        spec["Properties"]["Timeout"]
        for spec in after["Resources"].values()
        if "Timeout" in spec.get("Properties", {})
    }
    assert 121 in timeouts
    template.transform(path, "eu-west-1")
    assert len(list((tmp_path / "cache" / "sam-transform").glob("*.json"))) == 3


def test_a_cache_that_cannot_be_written_is_reported_and_the_deploy_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("PREDICTFLOW_CACHE_DIR", str(blocker))
    with caplog.at_level(logging.WARNING, logger="predictflow.local"):
        transformed = template.transform(ROOT / "template.yaml", "us-east-1")
    assert "AWS::StepFunctions::StateMachine" in {
        r["Type"] for r in transformed.template["Resources"].values()
    }
    assert "could not cache the SAM transform" in caplog.text
