"""Held-out quality of gradient-boosted trees on public tables: peers' defaults, and optionally a candidate.

    python benchmarks/train_quality.py [--tables adult ames ...] [--repeats 3]
        [--peers lightgbm histgb catboost] [--candidate module:function] [--json out/quality/results.json]

Why: the trainer's acceptance bar is "on held-out data, at least as good as LightGBM's defaults and
scikit-learn HistGradientBoosting's defaults on the task's main metric" (CatBoost's defaults are the stretch
bar). This script is that comparison, run the same way for every model, so that the trainer can be plugged
in with a few lines and judged on the same splits.

Protocol, and why:
- Each table (benchmarks/quality_tables.py) is written as a CSV, then split 80/20 into train and test,
  `--repeats` times (3 by default) with seeds 0, 1, 2. One split of a few thousand rows is too noisy to say
  "at least as good" about; three keep the whole run within minutes on 2 cores and give a spread. Repeated
  hold-out rather than k-fold: the candidate picks its rounds and settings by cross-validation *inside*
  its train part, and the test part must be something no model has seen.
- Classification splits are stratified on the target, so each class keeps its share in both parts (rare
  classes would otherwise swing the log-loss between splits); regression splits are plain random splits.
- Every model gets the same train CSV and the same test CSV (features only, target removed), read back the
  same way, so differences are the models', and the comparison per split is paired.
- Peers run with their default settings. The only arguments are seeds, thread counts (2, the machine's
  cores) and silencing, none of which is a quality knob: `LGBMClassifier/LGBMRegressor()` on pandas
  `category` columns; `HistGradientBoostingClassifier/Regressor(categorical_features="from_dtype")`;
  `CatBoostClassifier/CatBoostRegressor()` with `cat_features` named. Category levels come from the
  train part; a level seen only in test is treated as missing (LightGBM and HistGradientBoosting) or as a
  new level (CatBoost, whose categories are text). CatBoost cannot take a missing categorical value, so
  those become the level "__missing__".
- Metrics: binary -> ROC AUC (main) and log-loss; multiclass -> log-loss (main) and accuracy;
  regression -> RMSE. Reported as mean ± sample std over the splits, with the seconds each fit took
  (median and max over the splits: a fit that shared the cores with another process would skew a mean).

The candidate hook (`--candidate module:function`, `module` importable from the repo root, src/ or
benchmarks/):

    def candidate(train_csv: Path, target: str, task: str, workdir: Path) -> Callable[[Path], np.ndarray]

`train_csv` is a table CSV as described in quality_tables.py (header, target column, empty fields are
missing); `task` is "binary", "multiclass" or "regression"; `workdir` is an empty directory the candidate
may use. It returns a scorer that takes a CSV of the same columns less the target and returns, row for row:
binary -> P(target == labels[1]), shape (n,); multiclass -> probabilities, shape (n, k), columns in `labels`
order; regression -> predicted values, shape (n,). `labels` is `label_order(train_csv, target)`: the target's
distinct values as CSV text, sorted as strings. The seconds of the `candidate(...)` call count as its fit
time (cross-validation and export included). `reference_candidate` below is a real one (LightGBM defaults
through the CSV files), useful to check that the hook reproduces the LightGBM peer's figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "src"), str(HERE), str(ROOT)]

from quality_tables import TABLES, Table, Task, categorical_columns, read_csv, table  # noqa: E402

Array = npt.NDArray[np.float64]
Scorer = Callable[[Path], npt.ArrayLike]
Candidate = Callable[[Path, str, str, Path], Scorer]

THREADS = 2
MISSING_LEVEL = "__missing__"
MAIN_METRIC = {"binary": "auc", "multiclass": "log_loss", "regression": "rmse"}
SECOND_METRIC = {"binary": "log_loss", "multiclass": "accuracy", "regression": None}
HIGHER_IS_BETTER = {"auc": True, "accuracy": True, "log_loss": False, "rmse": False}
METRIC_TITLE = {"auc": "ROC AUC", "log_loss": "log-loss", "accuracy": "accuracy", "rmse": "RMSE"}


def label_order(train_csv: Path, target: str) -> list[str]:
    """The class labels a scorer's probabilities refer to: the target's distinct CSV texts, sorted."""
    return sorted({str(v) for v in read_csv(train_csv)[target].dropna()})


@dataclass(frozen=True)
class Split:
    table: Table
    repeat: int
    seed: int
    train_csv: Path
    test_csv: Path  # features only
    y_test: Any  # np.ndarray of str labels (classification) or float values (regression)
    labels: list[str]
    rows_train: int
    rows_test: int


def make_splits(t: Table, repeats: int, workdir: Path) -> list[Split]:
    full_csv = workdir / "tables" / f"{t.name}.csv"
    t.write_csv(full_csv)
    df = read_csv(full_csv)
    splits = []
    for repeat in range(repeats):
        seed = repeat
        stratify = df[t.target].astype(str) if t.task != "regression" else None
        train, test = train_test_split(df, test_size=0.2, random_state=seed, stratify=stratify)
        folder = workdir / "splits" / t.name / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        train_csv, test_csv = folder / "train.csv", folder / "test.csv"
        train.to_csv(train_csv, index=False, na_rep="")
        test.drop(columns=[t.target]).to_csv(test_csv, index=False, na_rep="")
        y = test[t.target].astype(str) if t.task != "regression" else test[t.target].astype(float)
        splits.append(
            Split(
                table=t,
                repeat=repeat,
                seed=seed,
                train_csv=train_csv,
                test_csv=test_csv,
                y_test=y.to_numpy(),
                labels=label_order(train_csv, t.target) if t.task != "regression" else [],
                rows_train=len(train),
                rows_test=len(test),
            )
        )
    return splits


# ---- peers -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerData:
    """A split as the peers see it: frames read from the split's CSVs, categoricals as pandas `category`."""

    x_train: pd.DataFrame
    y_train: Any
    x_test: pd.DataFrame
    categoricals: list[str]


def peer_data(split: Split) -> PeerData:
    target = split.table.target
    train = read_csv(split.train_csv)
    x_test = read_csv(split.test_csv)
    cats = categorical_columns(train, target)
    x_train = train.drop(columns=[target])
    for column in cats:
        dtype = pd.CategoricalDtype(sorted(str(v) for v in x_train[column].dropna().unique()))
        x_train[column] = x_train[column].astype(dtype)
        x_test[column] = x_test[column].astype(dtype)
    y = train[target].astype(str) if split.table.task != "regression" else train[target].astype(float)
    return PeerData(x_train=x_train, y_train=y.to_numpy(), x_test=x_test, categoricals=cats)


def _as_text(x: pd.DataFrame, categoricals: list[str]) -> pd.DataFrame:
    x = x.copy()
    for column in categoricals:
        x[column] = x[column].astype(object).where(x[column].notna(), MISSING_LEVEL).astype(str)
    return x


def _ordered_proba(model: Any, x: pd.DataFrame, labels: list[str], task: Task) -> Array:
    proba = np.asarray(model.predict_proba(x), dtype=np.float64)
    index = [list(map(str, model.classes_)).index(label) for label in labels]
    proba = proba[:, index]
    return proba[:, 1] if task == "binary" else proba


def lightgbm_peer(split: Split, data: PeerData) -> tuple[Array, float]:
    import lightgbm as lgb

    task = split.table.task
    model: Any = (
        lgb.LGBMRegressor(random_state=split.seed, n_jobs=THREADS, verbose=-1)
        if task == "regression"
        else lgb.LGBMClassifier(random_state=split.seed, n_jobs=THREADS, verbose=-1)
    )
    started = time.perf_counter()
    model.fit(data.x_train, data.y_train)
    seconds = time.perf_counter() - started
    if task == "regression":
        return np.asarray(model.predict(data.x_test), dtype=np.float64), seconds
    return _ordered_proba(model, data.x_test, split.labels, task), seconds


def histgb_peer(split: Split, data: PeerData) -> tuple[Array, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    task = split.table.task
    model: Any = (
        HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=split.seed)
        if task == "regression"
        else HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=split.seed)
    )
    started = time.perf_counter()
    model.fit(data.x_train, data.y_train)
    seconds = time.perf_counter() - started
    if task == "regression":
        return np.asarray(model.predict(data.x_test), dtype=np.float64), seconds
    return _ordered_proba(model, data.x_test, split.labels, task), seconds


def catboost_peer(split: Split, data: PeerData) -> tuple[Array, float]:
    from catboost import CatBoostClassifier, CatBoostRegressor

    task = split.table.task
    settings: dict[str, Any] = {
        "cat_features": data.categoricals,
        "random_seed": split.seed,
        "thread_count": THREADS,
        "verbose": 0,
        "allow_writing_files": False,
    }
    model: Any = CatBoostRegressor(**settings) if task == "regression" else CatBoostClassifier(**settings)
    x_train = _as_text(data.x_train, data.categoricals)
    x_test = _as_text(data.x_test, data.categoricals)
    started = time.perf_counter()
    model.fit(x_train, data.y_train)
    seconds = time.perf_counter() - started
    if task == "regression":
        return np.asarray(model.predict(x_test), dtype=np.float64), seconds
    return _ordered_proba(model, x_test, split.labels, task), seconds


PEERS: dict[str, Callable[[Split, PeerData], tuple[Array, float]]] = {
    "lightgbm": lightgbm_peer,
    "histgb": histgb_peer,
    "catboost": catboost_peer,
}
PEER_TITLE = {"lightgbm": "LightGBM", "histgb": "HistGB", "catboost": "CatBoost", "candidate": "candidate"}


# ---- candidate ---------------------------------------------------------------------------------------


def load_candidate(spec: str) -> Candidate:
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"--candidate wants module:function, got {spec!r}")
    return cast(Candidate, getattr(importlib.import_module(module_name), function_name))


def reference_candidate(train_csv: Path, target: str, task: str, workdir: Path) -> Scorer:
    """LightGBM defaults behind the candidate interface: reads only the CSVs it is given."""
    import lightgbm as lgb

    train = read_csv(train_csv)
    cats = categorical_columns(train, target)
    dtypes = {c: pd.CategoricalDtype(sorted(str(v) for v in train[c].dropna().unique())) for c in cats}
    x = train.drop(columns=[target]).astype(dtypes)
    model: Any
    if task == "regression":
        model = lgb.LGBMRegressor(random_state=0, n_jobs=THREADS, verbose=-1)
        model.fit(x, train[target].astype(float))
    else:
        model = lgb.LGBMClassifier(random_state=0, n_jobs=THREADS, verbose=-1)
        model.fit(x, train[target].astype(str))
    labels = label_order(train_csv, target)

    def score(features_csv: Path) -> Array:
        test = read_csv(features_csv).astype(dtypes)
        if task == "regression":
            return np.asarray(model.predict(test), dtype=np.float64)
        proba = np.asarray(model.predict_proba(test), dtype=np.float64)
        proba = proba[:, [list(map(str, model.classes_)).index(label) for label in labels]]
        return proba[:, 1] if task == "binary" else proba

    return score


def run_candidate(candidate: Candidate, split: Split, workdir: Path) -> tuple[Array, float, float]:
    folder = workdir / "candidate" / split.table.name / f"seed{split.seed}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    scorer = candidate(split.train_csv, split.table.target, split.table.task, folder)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    prediction = np.asarray(scorer(split.test_csv), dtype=np.float64)
    predict_seconds = time.perf_counter() - started
    expected: tuple[int, ...] = (
        (split.rows_test, len(split.labels)) if split.table.task == "multiclass" else (split.rows_test,)
    )
    if prediction.shape != expected:
        raise ValueError(
            f"candidate on {split.table.name}: prediction shape {prediction.shape}, want {expected}"
        )
    return prediction, fit_seconds, predict_seconds


# ---- metrics and report ------------------------------------------------------------------------------


def metrics(split: Split, prediction: Array) -> dict[str, float]:
    y = split.y_test
    task = split.table.task
    if task == "regression":
        return {"rmse": float(math.sqrt(np.mean((np.asarray(y, dtype=np.float64) - prediction) ** 2)))}
    if task == "binary":
        positive = (y == split.labels[1]).astype(int)
        p = np.clip(prediction, 1e-15, 1 - 1e-15)
        return {
            "auc": float(roc_auc_score(positive, prediction)),
            "log_loss": float(log_loss(positive, p, labels=[0, 1])),
        }
    proba = np.clip(prediction, 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    predicted = np.asarray(split.labels)[np.argmax(proba, axis=1)]
    return {
        "log_loss": float(log_loss(y, proba, labels=split.labels)),
        "accuracy": float(accuracy_score(y, predicted)),
    }


@dataclass
class Result:
    table: str
    task: str
    model: str
    seed: int
    rows_train: int
    rows_test: int
    metrics: dict[str, float]
    fit_seconds: float
    predict_seconds: float | None = None


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)

    def of(self, table_name: str, model: str) -> list[Result]:
        return [r for r in self.results if r.table == table_name and r.model == model]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _cell(values: Sequence[float], digits: int) -> str:
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _seconds(values: Sequence[float]) -> str:
    """Median and max: one fit slowed by another process on the machine should not move the summary."""
    return f"{statistics.median(values):.2f} / {max(values):.2f}" if values else ""


def _digits(metric: str, values: Sequence[float]) -> int:
    if metric != "rmse":
        return 4
    scale = max(abs(v) for v in values) if values else 1.0
    return max(0, 4 - len(str(int(scale))))


def report(run: Run, tables: Sequence[Table], models: Sequence[str]) -> str:
    lines: list[str] = []
    width = 24
    for task in ("binary", "multiclass", "regression"):
        chosen = [t for t in tables if t.task == task]
        if not chosen:
            continue
        main, second = MAIN_METRIC[task], SECOND_METRIC[task]
        arrow = "higher is better" if HIGHER_IS_BETTER[main] else "lower is better"
        lines.append("")
        lines.append(f"== {task}: {METRIC_TITLE[main]} ({arrow}), mean ± std over splits")
        header = f"{'table':<10} {'metric':<9} {'train/test':>12}  " + "".join(
            f"{PEER_TITLE[m]:>{width}}" for m in models
        )
        lines.append(header)
        for t in chosen:
            first = run.of(t.name, models[0])
            sizes = f"{first[0].rows_train}/{first[0].rows_test}" if first else ""
            for metric in [main] + ([second] if second else []):
                values = {m: [r.metrics[metric] for r in run.of(t.name, m)] for m in models}
                every = [v for vs in values.values() for v in vs]
                digits = _digits(metric, every)
                row = f"{t.name:<10} {METRIC_TITLE[metric]:<9} {sizes:>12}  "
                row += "".join(f"{_cell(values[m], digits):>{width}}" for m in models)
                lines.append(row)
                sizes = ""
            seconds = {m: [r.fit_seconds for r in run.of(t.name, m)] for m in models}
            lines.append(
                f"{'':<10} {'fit s':<9} {'median/max':>12}  "
                + "".join(f"{_seconds(seconds[m]):>{width}}" for m in models)
            )
    if "candidate" in models:
        lines.append("")
        lines.append("== candidate against the bar: main metric, candidate - peer, paired by split")
        for t in tables:
            main = MAIN_METRIC[t.task]
            mine = {r.seed: r.metrics[main] for r in run.of(t.name, "candidate")}
            verdicts = []
            for peer in [m for m in models if m != "candidate"]:
                theirs = {r.seed: r.metrics[main] for r in run.of(t.name, peer)}
                diffs = [mine[s] - theirs[s] for s in mine if s in theirs]
                if not diffs:
                    continue
                sign = 1 if HIGHER_IS_BETTER[main] else -1
                wins = sum(1 for d in diffs if sign * d >= 0)
                ok = sign * statistics.fmean(diffs) >= 0
                verdicts.append(
                    f"{PEER_TITLE[peer]} {statistics.fmean(diffs):+.4g} "
                    f"({wins}/{len(diffs)} splits, {'ok' if ok else 'BEHIND'})"
                )
            lines.append(f"{t.name:<10} {METRIC_TITLE[main]:<9} " + "; ".join(verdicts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tables", nargs="*", default=None, help="table names (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="80/20 splits per table, seeds 0..N-1")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--candidate", default=None, help="module:function, see the module docstring")
    parser.add_argument("--workdir", type=Path, default=ROOT / "out" / "quality")
    parser.add_argument("--json", type=Path, default=None, help="write every split's figures here")
    args = parser.parse_args(argv)

    tables = [table(n) for n in args.tables] if args.tables else list(TABLES)
    candidate = load_candidate(args.candidate) if args.candidate else None
    models = list(args.peers) + (["candidate"] if candidate else [])
    run = Run()
    started = time.perf_counter()
    for t in tables:
        for split in make_splits(t, args.repeats, args.workdir):
            data = peer_data(split)
            for name in args.peers:
                prediction, seconds = PEERS[name](split, data)
                run.results.append(_result(split, name, prediction, seconds))
                _progress(run.results[-1])
            if candidate:
                prediction, seconds, predict_seconds = run_candidate(candidate, split, args.workdir)
                run.results.append(_result(split, "candidate", prediction, seconds, predict_seconds))
                _progress(run.results[-1])
    print(report(run, tables, models))
    print(f"\n{len(tables)} tables x {args.repeats} splits in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in run.results], indent=1) + "\n")
    return 0


def _progress(r: Result) -> None:
    figures = ", ".join(f"{METRIC_TITLE[k]} {v:.6g}" for k, v in r.metrics.items())
    print(
        f"  {r.table} seed {r.seed} {PEER_TITLE[r.model]}: {figures}, fit {r.fit_seconds:.1f} s", flush=True
    )


def _result(
    split: Split, model: str, prediction: Array, seconds: float, predict_seconds: float | None = None
) -> Result:
    return Result(
        table=split.table.name,
        task=split.table.task,
        model=model,
        seed=split.seed,
        rows_train=split.rows_train,
        rows_test=split.rows_test,
        metrics=metrics(split, prediction),
        fit_seconds=seconds,
        predict_seconds=predict_seconds,
    )


if __name__ == "__main__":
    sys.exit(main())
