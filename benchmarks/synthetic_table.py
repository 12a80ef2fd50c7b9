"""A seeded synthetic table for timing the trainer (and, with --columns 50, the server) at a size we choose.

    python benchmarks/synthetic_table.py [--rows 100000] [--columns 30] [--seed 0] [--no-id] [--out PATH]

Why synthetic: the public tables (quality_tables.py) judge quality but are small or fixed in shape; the
training-time budget ("100,000 rows x 30 columns, report included, in 3 minutes on 2 cores") and the
serving benchmark need a table of a given size that anyone can regenerate byte for byte. It is not used to
judge quality.

Shape, for --columns C: an `id` column (unless --no-id), the binary target `label` (0/1), and C - 2 features
(C - 1 with --no-id), of which 2/7 are categorical (8 of 28 at C=30, 14 of 48 at C=50) and the rest numeric.
Numeric features mix the kinds real tables have: normal, log-normal (skewed amounts), uniform, counts
(Poisson) and a few on large scales. Categorical features have 3 to 50 levels with skewed (Zipf-like)
frequencies, written as text (`cat03=L07`), so a CSV reader sees them as categorical.

Signal: the label is drawn from a logistic model of part of the features: linear terms, a threshold, a sine,
a product of two features, and per-level effects of half of the categoricals; the other features are noise.
The intercept is set so that about a third of the labels are 1. The "oracle AUC" printed is the AUC of
that true logit on the drawn labels: about the best any model can do, so a trainer's AUC can be read
against it.

Missing values: after the label is drawn, each feature cell is blanked with probability 2% (the id and the
label never are), written as an empty field. All randomness comes from one numpy Generator seeded by --seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (3, 5, 8, 12, 20, 30, 40, 50)
MISSING_RATE = 0.02
LOGIT_ABOVE_ZERO = 0.30  # share of rows whose true logit is above 0; about 1/3 end up labelled 1

Floats = npt.NDArray[np.float64]


def _numeric(rng: np.random.Generator, kind: int, rows: int) -> Floats:
    """One numeric feature of the kind `kind % 5`, rounded as a CSV of real data would be."""
    match kind % 5:
        case 0:
            return np.round(rng.normal(0.0, 1.0, rows), 4)
        case 1:
            return np.round(rng.lognormal(3.0, 1.0, rows), 2)
        case 2:
            return np.round(rng.uniform(-5.0, 5.0, rows), 3)
        case 3:
            return rng.poisson(3.0, rows).astype(np.float64)
        case _:
            return np.round(rng.normal(50_000.0, 15_000.0, rows), 0)


def _standardise(x: Floats) -> Floats:
    standardised: Floats = (x - x.mean()) / (x.std() + 1e-12)
    return standardised


def auc(labels: npt.NDArray[np.int64], scores: Floats) -> float:
    """ROC AUC by ranks (continuous scores, so ties do not matter)."""
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def generate(
    rows: int, columns: int, seed: int, with_id: bool = True
) -> tuple[list[str], list[npt.NDArray[np.str_]], npt.NDArray[np.int64], Floats]:
    """Header, the text of each column (missing cells as ""), the labels and the true logit."""
    features = columns - 1 - int(with_id)
    if features < 4:
        raise ValueError("need at least 4 feature columns")
    n_cat = round(features * 2 / 7)
    n_num = features - n_cat
    rng = np.random.default_rng(seed)

    numeric = [_numeric(rng, k, rows) for k in range(n_num)]
    categorical: list[npt.NDArray[np.int64]] = []
    for k in range(n_cat):
        levels = LEVELS[k % len(LEVELS)]
        weights = 1.0 / np.arange(1, levels + 1) ** 0.8
        categorical.append(rng.choice(levels, size=rows, p=weights / weights.sum()))

    z = [_standardise(x) for x in numeric]
    logit = np.zeros(rows)
    for k, coefficient in zip(range(0, n_num, 3), (1.0, -0.8, 0.6, 0.5, -0.4, 0.3, 0.3), strict=False):
        logit += coefficient * z[k]
    logit += 1.2 * (z[1] > 0.8)
    logit += 0.9 * np.sin(2.0 * z[2])
    logit += 0.7 * z[4] * z[5]
    for k in range(0, n_cat, 2):
        effects = rng.normal(0.0, 0.8, LEVELS[k % len(LEVELS)])
        logit += effects[categorical[k]]
    logit = logit - np.quantile(logit, 1 - LOGIT_ABOVE_ZERO)
    labels = (rng.uniform(size=rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    header: list[str] = (["id"] if with_id else []) + [f"num{k + 1:02d}" for k in range(n_num)]
    header += [f"cat{k + 1:02d}" for k in range(n_cat)] + ["label"]
    texts: list[npt.NDArray[np.str_]] = []
    if with_id:
        texts.append(np.char.mod("%d", np.arange(1, rows + 1)))
    for x in numeric:
        texts.append(np.char.mod("%.10g", x))
    for k, codes in enumerate(categorical):
        names = np.array([f"cat{k + 1:02d}=L{level:02d}" for level in range(LEVELS[k % len(LEVELS)])])
        texts.append(names[codes])
    start = int(with_id)
    for i in range(start, start + features):
        blank = rng.uniform(size=rows) < MISSING_RATE
        texts[i] = np.where(blank, "", texts[i])
    texts.append(np.char.mod("%d", labels))
    return header, texts, labels, logit


def write(path: Path, header: list[str], texts: list[npt.NDArray[np.str_]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(header) + "\n")
        for row in zip(*(t.tolist() for t in texts), strict=True):
            out.write(",".join(row) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=30, help="all columns, id and label included")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-id", action="store_true", help="leave out the id column")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or ROOT / "out" / "synthetic" / f"synthetic_{args.rows}x{args.columns}_seed{args.seed}.csv"

    started = time.perf_counter()
    header, texts, labels, logit = generate(args.rows, args.columns, args.seed, with_id=not args.no_id)
    write(out, header, texts)
    feature_texts = texts[int(not args.no_id) : -1]
    missing = sum(int((t == "").sum()) for t in feature_texts)
    categorical = sum(1 for name in header if name.startswith("cat"))
    print(
        f"{out}: {args.rows} rows x {len(header)} columns ({len(feature_texts) - categorical} numeric, "
        f"{categorical} categorical), label=1 in {labels.mean():.1%}, "
        f"{missing / (args.rows * len(feature_texts)):.2%} of feature cells empty, "
        f"oracle AUC {auc(labels, logit):.4f}, {out.stat().st_size / 1e6:.1f} MB, "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
