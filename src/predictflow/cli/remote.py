"""`predictflow predict --remote`: a file's records sent to the stack's prediction API in batches.

The API's URL is the stack's `ApiUrl` output (the local stack publishes its own). Requests are
signed with SigV4 by botocore (the API's default authorizer is IAM); the local stack accepts
them signed or not. Output is what `predictflow predict` prints: one prediction line per record,
`line` being the file's line number, and rejected lines on stderr with their reason.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import click

from predictflow.cli.aws import Aws

BATCH: Final = 500


@dataclass
class RemoteReport:
    predicted: int = 0
    rejected: int = 0
    model_version: str = ""


def api_url(aws: Aws) -> str:
    stacks = aws.client("cloudformation").describe_stacks(StackName=aws.stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if "ApiUrl" not in outputs:
        raise click.ClickException(f"stack {aws.stack_name!r} has no ApiUrl output: deploy the API first")
    return str(outputs["ApiUrl"]).rstrip("/")


def file_records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, record) for every non-blank line: JSON Lines as objects, a CSV with a
    header row as objects keyed by its column names, a headerless CSV as its lines."""
    from predictflow.bundle import default_bundle
    from predictflow.records import detect_layout, is_blank, split_fields, split_lines

    header: list[str] | None = None
    first = True
    for number, text in enumerate(split_lines(path.read_bytes().decode("utf-8-sig", "replace")), 1):
        if is_blank(text):
            continue
        if first:
            first = False
            layout = detect_layout(text, default_bundle().schema)
            if layout.header is not None:
                header = [name.strip() for name in layout.header]
                continue
        if text.lstrip().startswith("{"):
            try:
                yield number, json.loads(text)
                continue
            except ValueError:
                pass
        if header is not None:
            cells = [cell.strip() for cell in split_fields(text)]
            if len(cells) == len(header):
                yield number, dict(zip(header, cells, strict=True))
                continue
        yield number, text


def post(url: str, body: bytes, aws: Aws | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if aws is not None and not aws.is_local:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = aws.session.get_credentials()
        request = AWSRequest("POST", url, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", aws.region_name).add_auth(request)
        headers = dict(request.headers.items())
    if not url.startswith(("https://", "http://127.0.0.1:", "http://localhost:")):
        raise click.ClickException(f"refusing to send records to {url}: not https or the local stack")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - checked above
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"{}")


def predict_remote(aws: Aws, path: Path, out: IO[str], rejects: IO[str], batch: int = BATCH) -> RemoteReport:
    url = f"{api_url(aws)}/predict"
    report = RemoteReport()
    pending: list[tuple[int, Any]] = []

    def send() -> None:
        status, body = post(url, json.dumps({"records": [r for _, r in pending]}).encode(), aws)
        if status != 200:
            raise click.ClickException(
                f"the API answered {status}: {body.get('error_type', '')}: {body.get('message', body)}"
            )
        report.model_version = body["model_version"]
        for (number, _), result in zip(pending, body["results"], strict=True):
            result["line"] = number
            if "error_type" in result:
                report.rejected += 1
                rejects.write(f"{path}:{number}: {result['error_type']}: {result['error_message']}\n")
            else:
                report.predicted += 1
                out.write(json.dumps(result, separators=(",", ":")) + "\n")
        pending.clear()

    for item in file_records(path):
        pending.append(item)
        if len(pending) == batch:
            send()
    if pending:
        send()
    return report
