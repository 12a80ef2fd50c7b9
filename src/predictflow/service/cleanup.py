"""Empty a stack's versioned buckets, so that `sam delete` can delete them.

    python -m predictflow.service.cleanup STACK [--region REGION] [--yes]

CloudFormation deletes only empty buckets, and a versioned bucket is empty only once every
object version and every delete marker is gone; `sam delete` on a stack that has run fails on
its buckets. This empties each bucket the stack created (its `AWS::S3::Bucket` resources),
after saying what it will delete and asking, unless `--yes`. What the stack retains when it is
deleted (the dead-letter and ledger tables, DeletionPolicy: Retain) is left alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DELETE_BATCH = 1000
"""The most keys one DeleteObjects request takes."""


class CleanupError(RuntimeError):
    """S3 refused to delete some versions; the bucket is not empty."""


@dataclass(frozen=True)
class Emptied:
    bucket: str
    versions: int
    delete_markers: int


def stack_buckets(cloudformation: Any, stack_name: str) -> list[str]:
    """The buckets `stack_name` created (physical names), whatever its Outputs say."""
    buckets = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for resource in page["StackResourceSummaries"]:
            if (
                resource["ResourceType"] == "AWS::S3::Bucket"
                and resource.get("PhysicalResourceId")
                and resource["ResourceStatus"] != "DELETE_COMPLETE"
            ):
                buckets.append(str(resource["PhysicalResourceId"]))
    return sorted(buckets)


def _entries(s3: Any, bucket: str) -> Iterator[tuple[dict[str, str], bool]]:
    """Every object version and delete marker of `bucket`: (key and version, is a marker)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            yield {"Key": version["Key"], "VersionId": version["VersionId"]}, False
        for marker in page.get("DeleteMarkers", []):
            yield {"Key": marker["Key"], "VersionId": marker["VersionId"]}, True


def empty_bucket(s3: Any, bucket: str) -> Emptied:
    """Delete every object version and delete marker of `bucket`."""
    # Listed in full first: deleting while paging would move the pages under the listing.
    entries = list(_entries(s3, bucket))
    for start in range(0, len(entries), DELETE_BATCH):
        batch = [key for key, _ in entries[start : start + DELETE_BATCH]]
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors = answer.get("Errors", [])
        if errors:
            first = errors[0]
            raise CleanupError(
                f"s3://{bucket}: {len(errors)} version(s) not deleted, first "
                f"{first.get('Key')}#{first.get('VersionId')}: {first.get('Code')}: {first.get('Message')}"
            )
    markers = sum(1 for _, marker in entries if marker)
    return Emptied(bucket, len(entries) - markers, markers)


def count_entries(s3: Any, bucket: str) -> tuple[int, int]:
    """(object versions, delete markers) in `bucket`."""
    versions = markers = 0
    for _, marker in _entries(s3, bucket):
        markers += marker
        versions += not marker
    return versions, markers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m predictflow.service.cleanup", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("stack", help="the stack's name (sam deploy's --stack-name)")
    parser.add_argument("--region", help="the stack's region [default: the AWS configuration's]")
    parser.add_argument("--yes", action="store_true", help="do not ask before deleting")
    args = parser.parse_args(argv)

    import boto3

    session = boto3.session.Session(region_name=args.region)
    s3 = session.client("s3")
    buckets = stack_buckets(session.client("cloudformation"), args.stack)
    if not buckets:
        print(f"{args.stack}: no buckets to empty")
        return 0
    for bucket in buckets:
        versions, markers = count_entries(s3, bucket)
        print(f"s3://{bucket}: {versions} object version(s), {markers} delete marker(s)")
    if not args.yes:
        answer = input(f"Delete all of them, for good, so that {args.stack} can be deleted? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    for bucket in buckets:
        emptied = empty_bucket(s3, bucket)
        print(f"s3://{bucket}: emptied ({emptied.versions} versions, {emptied.delete_markers} markers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
