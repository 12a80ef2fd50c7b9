"""`predictflow predict`: score a file offline with a bundle, no stack needed."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path

import click


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A bundle folder [default: the packaged Adult income bundle].",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON lines here instead of stdout.",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write rejected lines here instead of stderr.",
)
@click.option(
    "--remote",
    is_flag=True,
    help="Send the records to the stack's prediction API (--local or --stack-name) instead.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="Processes that score the file [default: the CPUs this process may use]; 1 scores it "
    "in this process, as does a file under 8 MiB. The output is the same whatever the number.",
)
@click.pass_context
def predict(
    ctx: click.Context,
    file: Path,
    model_dir: Path | None,
    output: Path | None,
    rejects: Path | None,
    remote: bool,
    jobs: int | None,
) -> None:
    """Score every record of FILE: one JSON line per record (line, id, model_version, actual,
    and label + probability, label + probabilities, or value, by the model's task).

    FILE is CSV with or without a header, or JSON Lines. A line that is not a valid record is
    reported with its number and reason, and the run goes on. With the target column in the
    file, it ends with the task's quality metrics.
    """
    if remote:
        if model_dir:
            raise click.UsageError(
                "--remote scores with the stack's active model; --model is for offline use"
            )
        if jobs is not None:
            raise click.UsageError("--remote sends the records to the stack; --jobs is for offline use")
        from predictflow.cli.remote import predict_remote

        with ExitStack() as files:
            out = files.enter_context(output.open("w")) if output else sys.stdout
            rejected = files.enter_context(rejects.open("w")) if rejects else sys.stderr
            sent = predict_remote(ctx.obj, file, out, rejected)
        click.echo(f"{sent.predicted} predicted, {sent.rejected} rejected by {sent.model_version}", err=True)
        return
    from predictflow.bundle import default_bundle, load_bundle
    from predictflow.memory import retain_freed_memory
    from predictflow.offline import predict_file

    bundle = load_bundle(model_dir) if model_dir else default_bundle()
    retain_freed_memory()  # a CLI run ends with the file: nothing else needs the memory back
    with ExitStack() as files:
        out = files.enter_context(output.open("w")) if output else sys.stdout
        rejected = files.enter_context(rejects.open("w")) if rejects else sys.stderr
        report = predict_file(file, out, rejected, bundle, jobs=jobs or available_cpus())
    click.echo(f"{report.predicted} predicted, {report.rejected} rejected", err=True)
    if report.ignored_columns:
        click.echo(f"ignored columns the model does not use: {', '.join(report.ignored_columns)}", err=True)
    if report.quality:
        shown = ", ".join(
            f"{METRIC_NAMES.get(name, name)} {value:.4f}"
            for name, value in report.quality.items()
            if name != "records"
        )
        click.echo(f"on {int(report.quality['records'])} labelled records: {shown}", err=True)


METRIC_NAMES = {
    "roc_auc": "ROC AUC",
    "log_loss": "log-loss",
    "macro_f1": "macro F1",
    "rmse": "RMSE",
    "mae": "MAE",
}


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, as `taskset` or a container sets it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
