"""The local stack's start leaves the garbage collector alone while it deploys."""

from __future__ import annotations

import gc

from predictflow.local.stack import LocalStack


def test_the_start_makes_no_full_collection_and_gives_the_collector_back() -> None:
    full_passes: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full_passes.append(1)

    gc.callbacks.append(watch)
    stack = LocalStack(publish_outputs=False)
    try:
        stack.start()
        during_start = len(full_passes)
        assert gc.isenabled()
        # The stack works: its input bucket exists.
        s3 = stack.client("s3")
        assert (
            s3.head_bucket(Bucket=stack.outputs["InputBucketName"])["ResponseMetadata"]["HTTPStatusCode"]
            == 200
        )
    finally:
        gc.callbacks.remove(watch)
        stack.stop()
    assert during_start == 0


def test_a_caller_that_paused_the_collector_finds_it_paused_after_the_start() -> None:
    gc.disable()
    try:
        with LocalStack(publish_outputs=False):
            assert not gc.isenabled()
    finally:
        gc.enable()


def test_two_served_stacks_one_after_the_other_in_one_process_both_deploy() -> None:
    """A served stack's resources live in moto's process-wide backends; stopping it clears them,
    or the next stack meets a log group named after the same stack."""
    from tests.conftest import running_stack
    from tests.fixtures import free_port

    arns = []
    for _ in range(2):
        with running_stack(server_port=free_port()) as stack:
            arns.append(stack.outputs["StateMachineArn"])
    assert arns[0] != arns[1]
