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
