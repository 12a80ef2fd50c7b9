"""The census record schema: the one definition that training, validation and serving share.

The field order, the allowed ranges and the category vocabularies below are the contract
between an input file and the model. `model/train.py` encodes its training data through
this module and records a fingerprint of it in the model metadata, so a model trained on a
different schema refuses to load (see `predictflow.model_artifact`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Final

MISSING: Final = "?"
"""The dataset's own marker for a missing value. It is scored, never rejected."""

POSITIVE_LABEL: Final = ">50K"
NEGATIVE_LABEL: Final = "<=50K"
LABELS: Final = (NEGATIVE_LABEL, POSITIVE_LABEL)


@dataclass(frozen=True, slots=True)
class NumericField:
    name: str
    minimum: int
    maximum: int


@dataclass(frozen=True, slots=True)
class CategoricalField:
    name: str
    categories: tuple[str, ...]


Field = NumericField | CategoricalField

# Ranges follow the validation contract: ages 17-100, hours 1-99, education-num 1-16 and
# non-negative money fields. The upper bounds of fnlwgt and the capital fields only stop
# absurd values (the largest in the census extract are 1,484,705 and 99,999); they stay
# below 2**24 so that every accepted value is exact in the model's float32 input.
# fmt: off
FIELDS: Final[tuple[Field, ...]] = (
    NumericField("age", 17, 100),
    CategoricalField(
        "workclass",
        (
            "Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov",
            "State-gov", "Without-pay", "Never-worked",
        ),
    ),
    NumericField("fnlwgt", 1, 10_000_000),
    CategoricalField(
        "education",
        (
            "Bachelors", "Some-college", "11th", "HS-grad", "Prof-school", "Assoc-acdm",
            "Assoc-voc", "9th", "7th-8th", "12th", "Masters", "1st-4th", "10th", "Doctorate",
            "5th-6th", "Preschool",
        ),
    ),
    NumericField("education-num", 1, 16),
    CategoricalField(
        "marital-status",
        (
            "Married-civ-spouse", "Divorced", "Never-married", "Separated", "Widowed",
            "Married-spouse-absent", "Married-AF-spouse",
        ),
    ),
    CategoricalField(
        "occupation",
        (
            "Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial",
            "Prof-specialty", "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical",
            "Farming-fishing", "Transport-moving", "Priv-house-serv", "Protective-serv",
            "Armed-Forces",
        ),
    ),
    CategoricalField(
        "relationship",
        ("Wife", "Own-child", "Husband", "Not-in-family", "Other-relative", "Unmarried"),
    ),
    CategoricalField(
        "race", ("White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black")
    ),
    CategoricalField("sex", ("Female", "Male")),
    NumericField("capital-gain", 0, 10_000_000),
    NumericField("capital-loss", 0, 10_000_000),
    NumericField("hours-per-week", 1, 99),
    CategoricalField(
        "native-country",
        (
            "United-States", "Cambodia", "England", "Puerto-Rico", "Canada", "Germany",
            "Outlying-US(Guam-USVI-etc)", "India", "Japan", "Greece", "South", "China", "Cuba",
            "Iran", "Honduras", "Philippines", "Italy", "Poland", "Jamaica", "Vietnam", "Mexico",
            "Portugal", "Ireland", "France", "Dominican-Republic", "Laos", "Ecuador", "Taiwan",
            "Haiti", "Columbia", "Hungary", "Guatemala", "Nicaragua", "Scotland", "Thailand",
            "Yugoslavia", "El-Salvador", "Trinadad&Tobago", "Peru", "Hong", "Holand-Netherlands",
        ),
    ),
)
# fmt: on

FEATURE_NAMES: Final = tuple(field.name for field in FIELDS)
LABEL_FIELD: Final = "income"
CATEGORICAL_INDICES: Final = tuple(
    index for index, field in enumerate(FIELDS) if isinstance(field, CategoricalField)
)
NUMERIC_INDICES: Final = tuple(index for index, field in enumerate(FIELDS) if isinstance(field, NumericField))


def schema_fingerprint() -> str:
    """A digest of the feature encoding (order, names, vocabularies), stored with the model.

    Validation ranges are left out on purpose: tightening a range changes what is accepted,
    not how an accepted record is encoded, so it must not invalidate the model.
    """
    described = [
        [f.name, list(f.categories) if isinstance(f, CategoricalField) else "numeric"] for f in FIELDS
    ]
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
