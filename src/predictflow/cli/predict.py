"""`predictflow predict`: offline batch prediction with the embedded model."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import click


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
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
def predict(file: Path, output: Path | None, rejects: Path | None) -> None:
    """Score every record of FILE: one JSON line per record (line, label, probability,
    model_version, and actual when the file carries the income column).

    A line that is not a valid record is reported with its number and reason, and the run
    goes on. With labels in the file, it ends with accuracy, ROC AUC and log-loss.
    """
    from predictflow.offline import predict_file
    from predictflow.predictors import EmbeddedPredictor

    with ExitStack() as files:
        out = files.enter_context(output.open("w")) if output else sys.stdout
        rejected = files.enter_context(rejects.open("w")) if rejects else sys.stderr
        report = predict_file(file, out, rejected, EmbeddedPredictor())
    click.echo(f"{report.predicted} predicted, {report.rejected} rejected", err=True)
    if report.quality is not None:
        q = report.quality
        click.echo(
            f"on {q.records} labelled records: accuracy {q.accuracy:.4f}, "
            f"ROC AUC {q.roc_auc:.4f}, log-loss {q.log_loss:.4f}",
            err=True,
        )
