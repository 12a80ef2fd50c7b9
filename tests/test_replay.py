"""Replay and its lineage, against the local stack (moto): the chain of a line through
replays, concurrent and interrupted replays, layouts, the --all guard, filtered listings
without a scan, and the EventBridge rule's dead-letter queue."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from predictflow.cli import cli
from predictflow.local.stack import LocalStack
from predictflow.pipeline.stores import DeadLetter, DeadLetterStore, now
from predictflow.predictors import EmbeddedPredictor
from predictflow.records import parse_chunk
from predictflow.service import replay as replays
from predictflow.service.results import Results, StackNames
from tests.conftest import running_stack
from tests.fixtures import ADULT, EVENTS

GOOD = (EVENTS / "records-good.csv").read_text().splitlines()


def offline_probability(line: str) -> float:
    """P(positive) of one record line as `predictflow predict` scores it, with no stack."""
    batch = parse_chunk(line.encode(), ADULT.schema)
    return float(EmbeddedPredictor(ADULT).scores(batch.features)[0, 1])


BAD_AGE = (
    "abc, Private, 45781, Masters, 14, Never-married, Prof-specialty, Not-in-family, White, Female, "
    "0, 0, 50, United-States"
)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack(retry_wait_scale=0.001) as local:
        yield local


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--stack-name", "predictflow-local", *args])


def settle(stack: LocalStack) -> None:
    stack.wait_for_executions(len(stack.started_executions), timeout=120)


def upload(stack: LocalStack, name: str, lines: list[str]) -> tuple[str, str]:
    """Upload a file of `lines`; returns (key, version) once its execution ended."""
    key = f"{stack.outputs['InputPrefix']}{name}"
    response = stack.client("s3").put_object(
        Bucket=stack.outputs["InputBucketName"], Key=key, Body="".join(f"{line}\n" for line in lines).encode()
    )
    settle(stack)
    return key, str(response["VersionId"])


def fresh_results(stack: LocalStack, **hooks: Any) -> tuple[Results, Any, Any]:
    """Results over clients of its own, so that botocore hooks reach only this caller."""
    s3 = boto3.client("s3", region_name="us-east-1")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for event, handler in hooks.items():
        client = s3 if ".s3." in event else dynamodb
        client.meta.events.register(event, handler)
    return Results(StackNames.from_outputs(stack.outputs), s3, dynamodb), s3, dynamodb


def replay_files(stack: LocalStack) -> list[dict[str, Any]]:
    """Every version of every object under the replay prefix."""
    prefix = f"{stack.outputs['InputPrefix']}replay/"
    pages = (
        stack.client("s3")
        .get_paginator("list_object_versions")
        .paginate(Bucket=stack.outputs["InputBucketName"], Prefix=prefix)
    )
    return [version for page in pages for version in page.get("Versions", [])]


def submissions(stack: LocalStack, attempt: int = 1) -> Counter[tuple[str, int]]:
    """How many times each original (key, line) went into a replay file that exists, as its
    `attempt`th replay."""
    store = DeadLetterStore(stack.client("dynamodb"), stack.outputs["DeadLetterTableName"])
    counted: Counter[tuple[str, int]] = Counter()
    for version in replay_files(stack):
        for origin in store.origins(stack.outputs["InputBucketName"], version["Key"]).values():
            if origin["attempt"] == attempt:
                counted[(origin["source_key"], origin["line"])] += 1
    return counted


def test_the_chain_of_a_line_through_two_replays_ends_in_one_prediction(
    stack: LocalStack, tmp_path: Path
) -> None:
    key, version = upload(stack, "chain.csv", (EVENTS / "records-mixed.csv").read_text().splitlines())
    assert [(e["line"], e["attempts"]) for e in stack.results().dead_letters(source_key=key)] == [
        (4, 1),
        (6, 1),
    ]

    unfixed = run("replay", "--source", key)
    assert unfixed.exit_code == 0, unfixed.output
    settle(stack)
    # The lines failed again, unchanged: the same two chains, now at their second attempt.
    again = stack.results().dead_letters(source_key=key)
    assert [(e["origin"]["line"], e["attempts"], e["error_type"]) for e in again] == [
        (4, 2, "InvalidValue"),
        (6, 2, "UnknownCategory"),
    ]
    assert all(e["source_key"].startswith("incoming/replay/") for e in again)
    listed = run("dead-letters", "--source", key, "--json")
    assert [entry["attempts"] for entry in json.loads(listed.stdout)["dead_letters"]] == [2, 2]

    fixed = tmp_path / "fixed.csv"
    fixed.write_text(f"{GOOD[0]}\n{GOOD[1]}\n")
    corrected = run("replay", "--source", key, "--fixed", str(fixed))
    assert corrected.exit_code == 0, corrected.output
    settle(stack)
    assert stack.results().dead_letters(source_key=key) == []

    results = stack.results()
    steps = results.trace(key, version, 4)
    assert [step["outcome"] for step in steps] == ["replayed", "replayed", "predicted"]
    # The final prediction is of the corrected line that stands for line 4, and says so.
    assert steps[-1]["prediction"]["origin"] == {
        "source_key": key,
        "version_id": version,
        "line": 4,
        "attempt": 2,
    }
    assert steps[-1]["prediction"]["probability"] == offline_probability(GOOD[0])
    assert [step["outcome"] for step in results.trace(key, version, 2)] == ["predicted"]

    printed = [json.loads(line) for line in run("results", key).stdout.splitlines()]
    own = [p["line"] for p in printed if "origin" not in p]
    replayed = [p["origin"]["line"] for p in printed if "origin" in p]
    assert own == [2, 3, 5]
    assert replayed == [4, 6]
    assert sorted(own + replayed) == [2, 3, 4, 5, 6]  # one final prediction per line
    assert [p["origin"]["attempt"] for p in printed if "origin" in p] == [2, 2]


def test_the_pipeline_puts_origin_on_a_replayed_lines_prediction(stack: LocalStack, tmp_path: Path) -> None:
    key, version = upload(stack, "route-origin.csv", [GOOD[0], BAD_AGE])
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(f"{GOOD[2]}\n")
    assert run("replay", "--source", key, "--fixed", str(fixed)).exit_code == 0
    settle(stack)
    (mark,) = stack.results().dead_letters(source_key=key, include_replayed=True)
    stored = list(stack.results().predictions(mark["replayed_as"], mark["replayed_version"]))
    assert stored[0]["origin"] == {"source_key": key, "version_id": version, "line": 2, "attempt": 1}


def test_fixed_without_a_filter_is_refused_unless_all(stack: LocalStack, tmp_path: Path) -> None:
    upload(stack, "refuse-all.csv", [BAD_AGE])
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(f"{GOOD[0]}\n")
    refused = run("replay", "--fixed", str(fixed))
    assert refused.exit_code != 0
    assert "add --all" in refused.output
    assert [e["line"] for e in stack.results().dead_letters(source_key="incoming/refuse-all.csv")] == [1]
    assert run("replay", "--fixed", str(fixed), "--all", "--dry-run").exit_code == 0


@pytest.mark.parametrize("fixed", [False, True])
def test_three_concurrent_replays_submit_each_record_once(stack: LocalStack, fixed: bool) -> None:
    key, _ = upload(stack, f"concurrent-{fixed}.csv", [BAD_AGE.replace("abc", f"ab{i}") for i in range(12)])
    body = "".join(f"{GOOD[i % len(GOOD)]}\n" for i in range(12)).encode() if fixed else None
    start = threading.Barrier(3)
    outcomes: list[replays.ReplayOutcome] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results, s3, dynamodb = fresh_results(stack)
            entries = results.dead_letters(source_key=key)
            plan = replays.plan(results, entries, body)
            start.wait()
            outcomes.append(replays.submit(results, s3, dynamodb, plan, body))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    settle(stack)
    assert sum(len(outcome.taken) for outcome in outcomes) == 12
    counted = submissions(stack)
    assert {line: n for (source, line), n in counted.items() if source == key} == dict.fromkeys(
        range(1, 13), 1
    )
    if fixed:
        uploads = [
            v for v in replay_files(stack) if v["Key"] in {f.key for o in outcomes for f in o.uploaded}
        ]
        assert len(uploads) == 1  # the corrected file, once
        assert stack.results().dead_letters(source_key=key) == []


KILL_POINTS = [
    ("before-call.dynamodb.PutItem", 1),  # before the first claim
    ("before-call.dynamodb.PutItem", 4),  # midway through the claims
    ("before-call.dynamodb.BatchWriteItem", 1),  # before the lineage
    ("before-call.s3.PutObject", 1),  # before the upload
    ("after-call.s3.PutObject", 1),  # after the upload, before any mark is resolved
    ("before-call.dynamodb.UpdateItem", 3),  # midway through resolving
]


@pytest.mark.parametrize(("event", "at"), KILL_POINTS)
def test_a_replay_killed_at_any_point_hides_nothing_and_submits_nothing_twice(
    stack: LocalStack, event: str, at: int
) -> None:
    name = f"killed-{event.split('.')[0]}-{event.split('.')[-1]}-{at}.csv"
    key, _ = upload(stack, name, [GOOD[0], *[BAD_AGE.replace("abc", f"ab{i}") for i in range(6)]])
    calls = Counter[str]()

    def interrupt(**_: Any) -> None:
        calls[event] += 1
        if calls[event] == at:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a call

    results, s3, dynamodb = fresh_results(stack, **{event: interrupt})
    plan = replays.plan(results, results.dead_letters(source_key=key), None)
    with pytest.raises(KeyboardInterrupt):
        replays.submit(results, s3, dynamodb, plan, None, pending_seconds=0.5)
    time.sleep(0.6)  # the interrupted run's claims expire
    # Where the interrupted run uploaded its file, that file is processed before the resumed run
    # looks (the premise of the last assertion; on a busy machine 0.6 s was not always enough).
    settle(stack)

    resumed = run("replay", "--source", key)
    assert resumed.exit_code == 0, resumed.output
    settle(stack)
    # Every entry went into exactly one first replay. (Where the interrupted run got as far
    # as its upload, its file was processed and the resumed run replayed those failures
    # once more, as their second replay: that is the chain going on, not a double.)
    counted = {line: n for (source, line), n in submissions(stack).items() if source == key}
    assert counted == dict.fromkeys(range(2, 8), 1)
    chains = stack.results().dead_letters(source_key=key)
    assert sorted(e["origin"]["line"] for e in chains) == list(range(2, 8))  # none hidden, none twice
    uploaded = event.startswith("after-call.s3") or event.endswith("UpdateItem")
    assert {e["attempts"] for e in chains} == ({3} if uploaded else {2})


def test_layouts_header_and_original_bytes_go_back_as_they_came(stack: LocalStack) -> None:
    """Entries written as the pipeline will write them (header, raw bytes) replay into one
    file per layout, with the header back on top and the metadata the parser reads."""
    bucket = stack.outputs["InputBucketName"]
    store = DeadLetterStore(stack.client("dynamodb"), stack.outputs["DeadLetterTableName"])
    header = (
        "age, workclass, fnlwgt, education, education-num, marital-status, occupation, relationship, "
        "race, sex, capital-gain, capital-loss, hours-per-week, native-country"
    )
    latin1 = b"\xff\xfe39, State-gov"

    def entry(key: str, line: int, raw: str, raw_base64: str | None = None) -> DeadLetter:
        return DeadLetter(
            bucket, key, "v1", line, raw, "InvalidValue", "bad", "arn:x", now(), None, raw_base64
        )

    store.put([entry("incoming/with-header.csv", 3, BAD_AGE)], header=header)
    store.put([entry("incoming/with-header.csv", 4, '{"age": "x"}')], header=header)
    store.put(
        [entry("incoming/no-header.csv", 2, "\\xff\\xfe39, State-gov", base64.b64encode(latin1).decode())]
    )
    results, s3, dynamodb = fresh_results(stack)
    entries = [e for e in results.dead_letters(error_type="InvalidValue") if e["source_key"] in
               ("incoming/with-header.csv", "incoming/no-header.csv")]  # fmt: skip
    plan = replays.plan(results, entries, None)
    outcome = replays.submit(results, s3, dynamodb, plan, None)
    settle(stack)
    by_kind = {}
    for replay_file in outcome.uploaded:
        got = s3.get_object(Bucket=bucket, Key=replay_file.key)
        by_kind[replay_file.key.rsplit(".", 1)[1], replay_file.header is not None] = (
            got["Body"].read(),
            got["Metadata"]["predictflow-header"],
            store.origins(bucket, replay_file.key),
        )
    assert by_kind["csv", True][0] == f"{header}\n{BAD_AGE}\n".encode()
    assert by_kind["csv", True][1] == "present"
    assert by_kind["csv", True][2][2]["line"] == 3  # line 2 of the replay file, after the header
    assert by_kind["csv", False][0] == latin1 + b"\n"
    assert by_kind["csv", False][1] == "absent"
    assert by_kind["jsonl", False][0] == b'{"age": "x"}\n'
    assert by_kind["jsonl", False][2] == {
        1: {"source_key": "incoming/with-header.csv", "version_id": "v1", "line": 4, "attempt": 1}
    }


def test_filtered_dead_letters_query_and_never_scan(stack: LocalStack) -> None:
    key, _ = upload(stack, "no-scan.csv", [GOOD[0], BAD_AGE])

    def no_scan(**_: Any) -> None:
        raise AssertionError("a filtered listing scanned the table")

    results, _, _ = fresh_results(stack, **{"before-call.dynamodb.Scan": no_scan})
    assert [e["line"] for e in results.dead_letters(source_key=key)] == [2]
    assert key in {e["source_key"] for e in results.dead_letters(error_type="InvalidValue")}


def test_dlq_lists_and_redrives_undelivered_events(stack: LocalStack) -> None:
    bucket = stack.outputs["InputBucketName"]
    key = "undelivered/late.csv"  # outside the input prefix: the upload itself starts nothing
    put = stack.client("s3").put_object(Bucket=bucket, Key=key, Body=f"{GOOD[0]}\n".encode())
    event = {
        "version": "0", "id": "7b3f0f0e-0000-4000-8000-000000000001", "detail-type": "Object Created",
        "source": "aws.s3", "time": "2025-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"bucket": {"name": bucket}, "object": {
            "key": key, "version-id": put["VersionId"], "etag": put["ETag"].strip('"'),
            "size": len(GOOD[0]) + 1,
        }},
    }  # fmt: skip
    sqs = stack.client("sqs")
    url = stack.outputs["EventDeadLetterQueueUrl"]
    sqs.send_message(  # as EventBridge does when the target cannot be reached
        QueueUrl=url,
        MessageBody=json.dumps(event),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "StateMachineDoesNotExist"},
        },
    )
    listed = run("dlq", "list", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)["events"]
    assert (row["key"], row["version"]) == (key, put["VersionId"])
    assert row["reason"] == "SDK_CLIENT_ERROR: StateMachineDoesNotExist"
    assert len(json.loads(run("dlq", "list", "--json").stdout)["events"]) == 1  # listing took nothing away

    redriven = run("dlq", "redrive")
    assert redriven.exit_code == 0, redriven.output
    assert "redriven 1 events" in redriven.stdout
    arn = redriven.stdout.splitlines()[0].rsplit(" -> ", 1)[1]
    deadline = time.monotonic() + 60
    while stack.describe(arn)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.describe(arn)["status"] == "SUCCEEDED"
    assert stack.results().file(key, put["VersionId"])["predicted"] == 1  # type: ignore[index]
    assert json.loads(run("dlq", "list", "--json").stdout) == {"events": []}
