"""`predictflow model`: bring in, deploy, list and switch model bundles.

    predictflow model import MODEL.onnx --schema SCHEMA.json --out BUNDLE_DIR
    predictflow [--local | --stack-name S] model deploy BUNDLE_DIR
    predictflow [--local | --stack-name S] model list [--output json]
    predictflow [--local | --stack-name S] model activate VERSION-PREFIX

The work is in `predictflow.service.models`; these commands parse and print.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from predictflow.cli.aws import Aws
from predictflow.cli.train import train

if TYPE_CHECKING:
    from predictflow.bundle.store import ModelStore


def store_of(ctx: click.Context) -> ModelStore:
    """The stack's model store, or a one-line reason there is none."""
    from predictflow.bundle.store import ModelStore

    aws = ctx.find_object(Aws)
    if aws is None:
        ctx.fail("internal: no AWS context")
    bucket = aws.names.model_bucket
    if not bucket:
        raise click.ClickException(
            f"stack {aws.stack_name!r} has no model store (no ModelBucketName output): "
            "deploy this version's template.yaml first"
        )
    return ModelStore(aws.client("s3"), bucket)


@contextmanager
def refusals() -> Iterator[None]:
    """A refused bundle or command is one line: its message, which says what to do."""
    from predictflow.bundle import BundleError

    try:
        yield
    except BundleError as error:
        raise click.ClickException(str(error)) from error


@click.group()
def model() -> None:
    """Model bundles: import an ONNX model, deploy it, list versions, roll back or forward."""


@model.command("import")
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--schema",
    "schema_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The record layout and target (a schema file, or another bundle's bundle.json).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The bundle folder to write.")
@click.option("--name", help="The bundle's name [default: the schema's].")
@click.option("--input", "input_name", help="The graph input holding the features [default: the only one].")
@click.option("--output", "output_name", help="The graph output holding the scores [default: the only one].")
def import_(
    model_file: Path,
    schema_file: Path,
    out: Path,
    name: str | None,
    input_name: str | None,
    output_name: str | None,
) -> None:
    """Make a bundle of MODEL_FILE, an ONNX model exported elsewhere (skl2onnx, onnxmltools).

    The graph's input must be float32 [N, number of features] in the schema's field order
    (categories as their index in the schema's list, yes/no as 0/1, missing as NaN); its score
    output a float tensor with one column per label (no ZipMap), or the value for regression.
    A model that does not fit is refused and nothing is written."""
    from predictflow.service.models import import_model

    with refusals():
        spec = import_model(
            model_file, schema_file, out, name=name, input_name=input_name, output_name=output_name
        )
    click.echo(
        f"wrote {out}: {spec.model_version} ({spec.target.task}, {len(spec.features)} features, "
        f"input {spec.model.input!r}, output {spec.model.output!r})"
    )


@model.command()
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--no-activate", is_flag=True, help="Upload only; switch later with `model activate`.")
@click.pass_context
def deploy(ctx: click.Context, bundle_dir: Path, no_activate: bool) -> None:
    """Check BUNDLE_DIR, put it in the stack's model store and make it the active version.

    Files already being processed keep the version they started with."""
    from predictflow.service.models import deploy as deploy_bundle

    store = store_of(ctx)
    with refusals():
        done = deploy_bundle(store, bundle_dir, activate=not no_activate)
    where = f"s3://{store.bucket}"
    uploaded = (
        f"uploaded {done.version} to {where}" if done.uploaded else f"{done.version} is already in {where}"
    )
    if done.activated:
        click.echo(f"{uploaded}; active now (was {done.previous or 'the packaged default'})")
    elif no_activate:
        click.echo(f"{uploaded}; not activated (active: {done.previous or 'the packaged default'})")
    else:
        click.echo(f"{uploaded}; it was already the active version")


@model.command("list")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def list_(ctx: click.Context, output: str) -> None:
    """The versions in the stack's model store, their main metric, and which one serves."""
    from predictflow.service.models import list_models

    store = store_of(ctx)
    rows = list_models(store)
    if output == "json":
        click.echo(json.dumps([row.to_dict() for row in rows], indent=2))
        return
    from rich.table import Table

    from predictflow.cli.commands import console

    table = Table(title=f"models in s3://{store.bucket}")
    for column in ("", "version", "name", "task", "main metric", "created", "note"):
        table.add_column(column, no_wrap=column != "note")
    for row in rows:
        table.add_row(
            "[green]*[/]" if row.active else "",
            row.version,
            row.name,
            row.task,
            row.metric or "-",
            row.created,
            ("active" if row.active else "") + ("; " if row.active and row.note else "") + row.note,
        )
    console().print(table)


@model.command()
@click.argument("version")
@click.pass_context
def activate(ctx: click.Context, version: str) -> None:
    """Make VERSION (or a unique prefix of it) the active version: roll back or forward.

    The packaged default's version is accepted too. The bundle is loaded and checked first."""
    from predictflow.service.models import activate as activate_version

    store = store_of(ctx)
    with refusals():
        done = activate_version(store, version)
    if done.changed:
        click.echo(f"active: {done.version} (was {done.previous or 'the packaged default'})")
    else:
        click.echo(f"{done.version} is already the active version")


# `model train` lives in its own module: its imports (LightGBM, scikit-learn, matplotlib) are
# the development extra's, loaded only when the command runs.
model.add_command(train)
