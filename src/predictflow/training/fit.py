"""Gradient-boosted trees (LightGBM) with the round count and main settings chosen on K folds.

Protocol. The folds are stratified on the class for classifiers and shuffled for regression, from
`seed`. Every setting tried is trained on the K folds at once (`lightgbm.cv`) with early stopping
on the held-out loss (log-loss, or squared error): its round count is the one with the best mean
held-out loss, and its out-of-fold predictions at that count give its score on the task's main
metric (binary: ROC AUC, multiclass: log-loss, regression: RMSE). The best-scoring setting wins;
the final model is trained on all rows for its round count times FINAL_ROUNDS_FACTOR (the final
model sees K/(K-1) times as many rows as each fold model, and more rows bear a few more rounds).

Settings searched (`settings`): a first setting close to LightGBM's defaults (31 leaves, 20
records per leaf) at a learning rate of 0.05 (0.1 from 30,000 rows), then settings drawn from GRID
with a generator seeded by `seed`, up to MAX_TRIALS, while a work budget lasts (BUDGET row-rounds:
a deterministic count, never the clock, so the same data always gives the same search).
Categories: the first setting is also tried with LightGBM's own categorical splits on the category
fields; when they score better on the folds (they tend to on high-cardinality columns) every later
setting uses them, otherwise categories are learned as their codes. ONNX Runtime's tree kernel
serves categorical splits (BRANCH_EQ nodes), checked after export.

Determinism: `deterministic`, `force_row_wise`, one thread always (not the machine's count) and
fixed seeds; the same data and options give the same model bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from predictflow.bundle.format import Task
from predictflow.training.errors import TrainingError

Floats = npt.NDArray[np.float64]
THREADS: Final = 1
MAX_ROUNDS: Final = 3_000
MAX_TRIALS: Final = 8
BUDGET: Final = 1.2e9
"""Row-rounds the search may spend (rows a fold model trains on x rounds it runs x trees per
round, summed over folds and settings): about 100 s on one core of this project's 2-core box
under load. A deterministic count, never the clock, so the same data gives the same search."""
LARGE_TABLE: Final = 30_000
LARGE_TABLE_RATE: Final = 0.1
PATIENCE: Final = 50
FINAL_ROUNDS_FACTOR: Final = 1.1
LEARNING_RATE: Final = 0.05
GRID: Final[dict[str, Sequence[Any]]] = {
    "num_leaves": (7, 15, 31, 63),
    "min_child_samples": (5, 10, 20, 40, 80),
    "lambda_l2": (0.0, 1.0, 5.0),
    "feature_fraction": (0.6, 0.8, 1.0),
}
MAIN_METRIC: Final[dict[Task, str]] = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
HIGHER_IS_BETTER: Final = {"roc_auc"}


@dataclass(frozen=True)
class Setting:
    learning_rate: float = LEARNING_RATE
    num_leaves: int = 31
    min_child_samples: int = 20
    lambda_l2: float = 0.0
    feature_fraction: float = 1.0
    categorical: bool = False

    def params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "lambda_l2": self.lambda_l2,
            "feature_fraction": self.feature_fraction,
        }


@dataclass
class Trial:
    setting: Setting
    rounds: int
    score: float
    oof: Floats = field(repr=False)


@dataclass
class Search:
    trials: list[Trial]
    best: Trial
    rounds: int
    """For the final model."""
    folds: int
    seed: int

    def describe(self, task: Task) -> dict[str, Any]:
        metric = MAIN_METRIC[task]
        return {
            "folds": self.folds,
            "seed": self.seed,
            "stratified": task != "regression",
            "early_stopping": {"max_rounds": MAX_ROUNDS, "patience": PATIENCE},
            "budget_row_rounds": BUDGET,
            "selection_metric": metric,
            "final_rounds_factor": FINAL_ROUNDS_FACTOR,
            "trials": [
                {
                    **t.setting.params(),
                    "categorical_splits": t.setting.categorical,
                    "rounds": t.rounds,
                    metric: t.score,
                }
                for t in self.trials
            ],
        }


def base_params(task: Task, classes: int, seed: int) -> dict[str, Any]:
    objective = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[task]
    params: dict[str, Any] = {
        "objective": objective,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": THREADS,
        "verbose": -1,
    }
    if task == "multiclass":
        params["num_class"] = classes
    return params


def learning_rate(rows: int) -> float:
    """Larger tables get a larger rate: the same budget then buys more settings tried."""
    return LEARNING_RATE if rows < LARGE_TABLE else LARGE_TABLE_RATE


def settings(seed: int, count: int, rate: float = LEARNING_RATE) -> list[Setting]:
    chosen = [Setting(learning_rate=rate)]
    rng = np.random.default_rng(seed)
    seen = {chosen[0]}
    while len(chosen) < count:
        drawn = Setting(
            rate, **{name: values[int(rng.integers(len(values)))] for name, values in GRID.items()}
        )
        if drawn not in seen:
            seen.add(drawn)
            chosen.append(drawn)
    return chosen


def make_folds(y: Floats, task: Task, folds: int, seed: int, labels: Sequence[str]) -> list[tuple[Any, Any]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "regression":
        if len(y) < 2 * folds:
            raise TrainingError(f"{len(y)} records are too few for {folds}-fold cross-validation")
        return list(KFold(folds, shuffle=True, random_state=seed).split(y))
    counts = np.bincount(y.astype(np.int64), minlength=len(labels))
    few = [f"{labels[i]!r} ({int(n)})" for i, n in enumerate(counts) if n < folds]
    if few:
        raise TrainingError(
            f"class(es) with fewer examples than the {folds} cross-validation folds: {', '.join(few)}: "
            "add examples of them, merge them into another class, or lower --folds"
        )
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def score(task: Task, y: Floats, predicted: Floats) -> float:
    if task == "binary":
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(y, predicted))
    if task == "multiclass":
        from sklearn.metrics import log_loss

        return float(log_loss(y, np.clip(predicted, 1e-15, 1.0), labels=list(range(predicted.shape[1]))))
    return float(math.sqrt(np.mean((y - predicted) ** 2)))


def better(metric: str, a: float, b: float) -> bool:
    return a > b if metric in HIGHER_IS_BETTER else a < b


def cross_validate(
    x: Floats,
    y: Floats,
    task: Task,
    classes: int,
    setting: Setting,
    folds: list[tuple[Any, Any]],
    seed: int,
    categorical: Sequence[int],
) -> Trial:
    import lightgbm

    params = base_params(task, classes, seed) | setting.params()
    params["metric"] = {"binary": "binary_logloss", "multiclass": "multi_logloss", "regression": "l2"}[task]
    dataset = lightgbm.Dataset(
        x, y, categorical_feature=list(categorical) if setting.categorical else "auto", free_raw_data=False
    )
    history = lightgbm.cv(
        params,
        dataset,
        num_boost_round=MAX_ROUNDS,
        folds=folds,
        callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)],
        return_cvbooster=True,
    )
    curve: list[float] = next(
        list(values)  # type: ignore[arg-type]
        for key, values in history.items()
        if key.startswith("valid") and key.endswith("-mean")
    )
    rounds = int(np.argmin(curve)) + 1
    boosters: list[Any] = history["cvbooster"].boosters  # type: ignore[union-attr]
    oof = np.zeros((len(y), classes) if task == "multiclass" else len(y), dtype=np.float64)
    for booster, (_, valid) in zip(boosters, folds, strict=True):
        oof[valid] = booster.predict(x[valid], num_iteration=rounds)
    return Trial(setting, rounds, score(task, y, oof), oof)


def search(
    x: Floats,
    y: Floats,
    task: Task,
    classes: int,
    *,
    folds: list[tuple[Any, Any]],
    seed: int,
    categorical: Sequence[int],
    count: int | None = None,
    on_trial: Callable[[int, int], None] | None = None,
) -> Search:
    """Try settings on the folds while the budget lasts; see the module docstring."""
    metric = MAIN_METRIC[task]
    limit = count or MAX_TRIALS
    candidates = settings(seed, limit, learning_rate(len(y)))
    total = limit + (1 if categorical else 0)
    trees = classes if task == "multiclass" else 1
    fold_rows = len(y) * (len(folds) - 1) / len(folds)
    trials: list[Trial] = []
    spent = last_cost = 0.0
    native = False
    best: Trial | None = None
    for setting in candidates:
        if trials and spent + last_cost > BUDGET:
            break
        trial = cross_validate(
            x, y, task, classes, replace(setting, categorical=native), folds, seed, categorical
        )
        last_cost = len(folds) * fold_rows * (trial.rounds + PATIENCE) * trees
        spent += last_cost
        trials.append(trial)
        if on_trial:
            on_trial(len(trials), total)
        if best is None or better(metric, trial.score, best.score):
            best = trial
        if len(trials) == 1 and categorical:
            # Categorical splits or category codes: decided once, on the first setting, by the folds.
            other = cross_validate(
                x, y, task, classes, replace(setting, categorical=True), folds, seed, categorical
            )
            spent += len(folds) * fold_rows * (other.rounds + PATIENCE) * trees
            trials.append(other)
            if on_trial:
                on_trial(len(trials), total)
            if better(metric, other.score, trial.score):
                native, best = True, other
    assert best is not None
    rounds = max(1, round(best.rounds * FINAL_ROUNDS_FACTOR))
    return Search(trials, best, rounds, len(folds), seed)


def final_model(
    x: Floats,
    y: Floats,
    task: Task,
    classes: int,
    setting: Setting,
    rounds: int,
    seed: int,
    categorical: Sequence[int],
) -> Any:
    import lightgbm

    params = base_params(task, classes, seed) | setting.params()
    dataset = lightgbm.Dataset(x, y, categorical_feature=list(categorical) if setting.categorical else "auto")
    return lightgbm.train(params, dataset, rounds)
