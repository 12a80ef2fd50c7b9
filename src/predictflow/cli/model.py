"""`predictflow model`: bring in, deploy, list and switch model bundles.

    predictflow model import MODEL.onnx --schema SCHEMA.json --out BUNDLE_DIR
    predictflow [--local | --stack-name S] model deploy BUNDLE_DIR
    predictflow [--local | --stack-name S] model list [--output table|json|text]
    predictflow [--local | --stack-name S] model activate VERSION-PREFIX

The work is in `predictflow.service.models`; these commands parse and print.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from predictflow.cli.aws import aws_of, connection_options
from predictflow.cli.output import Column, Listing, listing_options
from predictflow.cli.train import train

if TYPE_CHECKING:
    from predictflow.bundle.store import ModelStore


def store_of(ctx: click.Context) -> ModelStore:
    """The stack's model store, or a one-line reason there is none."""
    from predictflow.bundle.store import ModelStore

    aws = aws_of(ctx)
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
@connection_options
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
@connection_options
@click.pass_context
def deploy(ctx: click.Context, bundle_dir: Path, no_activate: bool) -> None:
    """Check BUNDLE_DIR, put it in the stack's model store and make it the active version.

    Files already being processed keep the version they started with."""
    from predictflow.service.models import deploy as deploy_bundle

    store = store_of(ctx)
    with refusals():
        done = deploy_bundle(
            store, bundle_dir, activate=not no_activate, onnx_runtime=aws_of(ctx).names.onnx_runtime
        )
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


MODEL_COLUMNS = (
    Column("", lambda r: "*" if r["active"] else ""),
    Column("version", lambda r: r["version"], ident=True),
    Column("name", lambda r: r["name"]),
    Column("task", lambda r: r["task"]),
    Column("main metric", lambda r: r["metric"] or "-"),
    Column("created", lambda r: r["created"]),
    Column(
        "note", lambda r: "; ".join(part for part in ("active" if r["active"] else "", r["note"]) if part)
    ),
)


@model.command("list")
@listing_options
@connection_options
@click.pass_context
def list_(ctx: click.Context, listing: Listing) -> None:
    """The versions in the stack's model store, their main metric, and which one serves: the
    packaged default first, then the deployed ones oldest first."""
    from predictflow.service.models import list_models

    store = store_of(ctx)
    rows = [row.to_dict() | {"position": index} for index, row in enumerate(list_models(store))]
    # Versions come in the order the store gives (new ones last): their place is the key.
    page = listing.page(rows, lambda row: [row["position"]], "model-list")
    models = [{k: v for k, v in row.items() if k != "position"} for row in page.items]
    listing.emit("models", models, MODEL_COLUMNS, page.next_token, title=f"models in s3://{store.bucket}")


@model.command()
@click.argument("version")
@connection_options
@click.pass_context
def activate(ctx: click.Context, version: str) -> None:
    """Make VERSION (or a unique prefix of it) the active version: roll back or forward.

    The packaged default's version is accepted too. The bundle is loaded and checked first."""
    from predictflow.service.models import activate as activate_version

    store = store_of(ctx)
    with refusals():
        done = activate_version(store, version, onnx_runtime=aws_of(ctx).names.onnx_runtime)
    if done.changed:
        click.echo(f"active: {done.version} (was {done.previous or 'the packaged default'})")
    else:
        click.echo(f"{done.version} is already the active version")


# `model train` lives in its own module: its imports (LightGBM, scikit-learn, matplotlib) are
# the development extra's, loaded only when the command runs.
model.add_command(train)
