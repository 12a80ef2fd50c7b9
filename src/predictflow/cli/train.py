"""`predictflow model train`: train a bundle from a CSV file (registered by the `model` group).

Heavy libraries (LightGBM, scikit-learn, matplotlib, the ONNX converters) are imported inside the
command, so `predictflow --help` stays fast and the Lambda layer never needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

TASKS = ("binary", "multiclass", "regression")


@click.command()
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", required=True, help="The column to predict.")
@click.option("--task", type=click.Choice(TASKS), help="[default: inferred from the target's values]")
@click.option(
    "--positive",
    help="Binary task: the positive class [default: the yes of a yes/no pair, else the minority].",
)
@click.option(
    "--schema",
    "schema_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A predictflow schema file or an Amazon ML data schema [default: inferred from DATA].",
)
@click.option("--id", "id_column", help="A row-id column: passed through as `id`, never a feature.")
@click.option(
    "--folds", type=click.IntRange(2, 20), default=5, show_default=True, help="Cross-validation folds."
)
@click.option("--seed", type=int, default=None, help="Seed of folds, search and trees [default: fixed].")
@click.option(
    "--max-settings",
    type=click.IntRange(1, 50),
    default=None,
    help="Try at most this many settings in the search [default: 8, within a fixed work budget].",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The bundle folder to write.",
)
@click.option("--force", is_flag=True, help="Replace --out when it exists and is not empty.")
def train(
    data: Path,
    target: str,
    task: str | None,
    positive: str | None,
    schema_path: Path | None,
    id_column: str | None,
    folds: int,
    seed: int | None,
    max_settings: int | None,
    out: Path,
    force: bool,
) -> None:
    """Train a model bundle from DATA (CSV) and write it to --out.

    Without --schema the schema is inferred from DATA (which then needs a header row): numeric
    fields get a range with a margin, categorical fields their vocabulary, and '', NA and ? are
    missing values. Gradient-boosted trees (LightGBM) with the round count and main settings chosen
    by cross-validation, exported to ONNX; an evaluation report goes into --out/report/. The same
    data and options give the same bytes.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from predictflow.bundle import BundleError
    from predictflow.training import DEFAULT_SEED, STAGES, TrainOptions, train_bundle

    options = TrainOptions(
        target=target,
        task=task,  # type: ignore[arg-type]
        positive=positive,
        schema=schema_path,
        id_column=id_column,
        folds=folds,
        seed=DEFAULT_SEED if seed is None else seed,
        trials=max_settings,
    )
    console = Console(stderr=True)
    notes: list[str] = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        bar = progress.add_task("starting", total=len(STAGES))

        def events(kind: str, text: str) -> None:
            if kind == "stage":
                progress.update(bar, description=text, completed=STAGES.index(text))
            elif kind == "trial":
                progress.update(bar, description=f"CV search: setting {text}")
            else:
                notes.append(text)
                progress.console.print(f"[dim]{text}[/dim]")

        try:
            result = train_bundle(data, out, options, force=force, events=events)
        except BundleError as error:
            raise click.ClickException(str(error)) from error
    _summary(console, result)


def _summary(console: Any, result: Any) -> None:
    metrics = ", ".join(f"{name} {value:.4f}" for name, value in result.metrics.items())
    training = result.spec.training
    console.print(f"wrote {result.spec.model_version} to {result.out}")
    console.print(
        f"out-of-fold {metrics} "
        f"({training['cross_validation']['folds']}-fold CV, {training['rounds']} rounds)"
    )
    if "report" in training:
        console.print(f"report: {result.out / training['report']}")
