"""The record parser and validator: every input line is a record or a rejection with a reason."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predictflow.records import (
    MAX_LINE_CHARS,
    RejectReason,
    check_fields,
    parse_chunk,
    split_fields,
)
from predictflow.schema import FIELDS, CategoricalField, NumericField

ARTICLE = (
    "22, Local-gov, 108435, Masters, 14, Married-civ-spouse, Prof-specialty, Husband, White, Male, "
    "0, 0, 80, United-States"
)
ARTICLE_VALUES = (
    22, "Local-gov", 108435, "Masters", 14, "Married-civ-spouse", "Prof-specialty", "Husband", "White",
    "Male", 0, 0, 80, "United-States",
)  # fmt: skip
HEADER = ", ".join(field.name for field in FIELDS)


def with_field(index: int, value: str, line: str = ARTICLE) -> str:
    fields = line.split(", ")
    fields[index] = value
    return ", ".join(fields)


def test_the_articles_record_is_parsed_to_typed_values() -> None:
    batch = parse_chunk(ARTICLE.encode())
    assert batch.lines == [1]
    assert batch.rows() == [ARTICLE_VALUES]
    assert batch.actual == [None]
    assert batch.rejections == []


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(f"{ARTICLE}\r\n{ARTICLE}\r\n".encode(), id="crlf"),
        pytest.param(b"\xef\xbb\xbf" + f"{ARTICLE}\n{ARTICLE}\n".encode(), id="utf8-bom"),
        pytest.param(f"{HEADER}\n{ARTICLE}\n{ARTICLE}".encode(), id="header"),
        pytest.param(
            f"{HEADER}, income\r\n{ARTICLE}, <=50K\r\n{ARTICLE}, >50K.\r\n".encode(), id="header-income"
        ),
        pytest.param(f"\n  \n{ARTICLE}\n\n{ARTICLE}\n\n".encode(), id="blank-lines"),
        pytest.param(
            ARTICLE.replace(", ", ",").encode() + b"\n" + ARTICLE.encode(), id="no-space-after-comma"
        ),
    ],
)
def test_every_supported_format_gives_the_same_records(data: bytes) -> None:
    batch = parse_chunk(data)
    assert batch.rejections == []
    assert batch.rows() == [ARTICLE_VALUES, ARTICLE_VALUES]


def test_line_numbers_count_every_physical_line_including_header_and_blanks() -> None:
    batch = parse_chunk(f"{HEADER}\n\n{ARTICLE}\nnonsense\n{ARTICLE}\n".encode())
    assert batch.lines == [3, 5]
    assert [(r.line, r.reason) for r in batch.rejections] == [(4, RejectReason.FIELD_COUNT)]


def test_a_chunk_starting_mid_file_numbers_from_its_first_line_and_has_no_header() -> None:
    batch = parse_chunk(f"{HEADER}\n{ARTICLE}\n".encode(), first_line=101, allow_header=False)
    assert batch.lines == [102]
    assert batch.rejections[0].line == 101


@pytest.mark.parametrize(
    ("spelled", "label"), [("<=50K", "<=50K"), (">50K", ">50K"), ("<=50K.", "<=50K"), (">50K.", ">50K")]
)
def test_the_income_column_is_read_with_or_without_the_trailing_period(spelled: str, label: str) -> None:
    assert parse_chunk(f"{ARTICLE}, {spelled}".encode()).actual == [label]


def test_missing_categorical_values_are_scored_not_rejected() -> None:
    line = with_field(1, "?", with_field(13, "?"))
    batch = parse_chunk(line.encode())
    assert batch.rejections == []
    assert batch.rows()[0][1] == "?"
    assert batch.rows()[0][13] == "?"


@pytest.mark.parametrize(
    ("line", "reason", "names"),
    [
        (with_field(0, "abc"), RejectReason.INVALID_VALUE, "age: 'abc'"),
        (with_field(0, "NaN"), RejectReason.INVALID_VALUE, "age: 'NaN'"),
        (with_field(0, "inf"), RejectReason.INVALID_VALUE, "age: 'inf'"),
        (with_field(0, "39.5"), RejectReason.INVALID_VALUE, "age: '39.5'"),
        (with_field(0, "16"), RejectReason.INVALID_VALUE, "age: 16 is outside 17..100"),
        (with_field(0, "101"), RejectReason.INVALID_VALUE, "age: 101 is outside 17..100"),
        (with_field(12, "-5"), RejectReason.INVALID_VALUE, "hours-per-week: -5"),
        (with_field(12, "0"), RejectReason.INVALID_VALUE, "hours-per-week: 0"),
        (with_field(4, "17"), RejectReason.INVALID_VALUE, "education-num: 17"),
        (with_field(10, "-1"), RejectReason.INVALID_VALUE, "capital-gain: -1"),
        (with_field(0, "?"), RejectReason.INVALID_VALUE, "age: '?'"),
        (with_field(8, "Martian"), RejectReason.UNKNOWN_CATEGORY, "race: 'Martian'"),
        (ARTICLE + ", maybe", RejectReason.INVALID_VALUE, "income: 'maybe'"),
        (", ".join(ARTICLE.split(", ")[:13]), RejectReason.FIELD_COUNT, "got 13"),
        (ARTICLE + ", >50K, extra", RejectReason.FIELD_COUNT, "got 16"),
        (
            '39, "Private, Inc", 1, HS-grad, 9, Divorced, Sales, Wife, White, Male, 0, 0, 40, Cuba',
            RejectReason.UNKNOWN_CATEGORY,
            "workclass: 'Private, Inc'",
        ),
        ("# a comment line", RejectReason.FIELD_COUNT, "got 1"),
    ],
)
def test_a_bad_line_is_rejected_with_the_field_and_value_named(
    line: str, reason: RejectReason, names: str
) -> None:
    batch = parse_chunk(f"{ARTICLE}\n{line}\n{ARTICLE}\n".encode())
    assert batch.lines == [1, 3]
    (rejection,) = batch.rejections
    assert rejection.line == 2
    assert rejection.reason == reason
    assert names in rejection.message
    assert rejection.raw == line


@pytest.mark.parametrize("field", [f for f in FIELDS if isinstance(f, NumericField)], ids=lambda f: f.name)
def test_numeric_limits_are_inclusive(field: NumericField) -> None:
    index = FIELDS.index(field)
    accepted = parse_chunk(
        f"{with_field(index, str(field.minimum))}\n{with_field(index, str(field.maximum))}".encode()
    )
    assert len(accepted) == 2
    rejected = parse_chunk(
        f"{with_field(index, str(field.minimum - 1))}\n{with_field(index, str(field.maximum + 1))}".encode()
    )
    assert len(rejected) == 0
    assert [r.reason for r in rejected.rejections] == [RejectReason.INVALID_VALUE] * 2


def test_lines_that_are_not_utf8_are_rejected_one_by_one() -> None:
    batch = parse_chunk(f"{ARTICLE}\n".encode() + b"39, \xff\xfe bad\n" + ARTICLE.encode())
    assert batch.lines == [1, 3]
    assert batch.rejections[0].reason == RejectReason.ENCODING
    assert batch.rejections[0].line == 2


def test_an_overlong_line_is_rejected_and_its_excerpt_is_bounded() -> None:
    long_line = "x" * (MAX_LINE_CHARS * 250)  # 1 MB
    batch = parse_chunk(f"{ARTICLE}\n{long_line}\n".encode())
    (rejection,) = batch.rejections
    assert rejection.reason == RejectReason.LINE_TOO_LONG
    assert len(rejection.raw) < 2000


def test_the_whole_training_split_parses_without_a_rejection() -> None:
    from tests.conftest import ROOT

    batch = parse_chunk((ROOT / "model" / "data" / "adult.data").read_bytes())
    assert len(batch) == 32_561
    assert batch.rejections == []


# Lines built from valid values, near-valid values and noise, so that the fast path and the
# slow path are both exercised on every kind of line.
def _value(field: NumericField | CategoricalField) -> st.SearchStrategy[str]:
    if isinstance(field, CategoricalField):
        return st.sampled_from([*field.categories, "?", "Nope", " Private", ""])
    return st.one_of(
        st.integers(field.minimum - 2, field.maximum + 2).map(str),
        st.sampled_from(["", "nan", "1e3", "+5", " 40", "٣", "1_0"]),
    )


_line = st.one_of(
    st.tuples(*[_value(f) for f in FIELDS]).map(", ".join),
    st.tuples(*[_value(f) for f in FIELDS], st.sampled_from(["<=50K", ">50K.", "x"])).map(", ".join),
    st.text(max_size=40),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, max_size=30))
def test_fast_path_agrees_with_check_fields_and_every_line_is_accounted_for(lines: list[str]) -> None:
    data = "\n".join(lines).encode("utf-8", errors="surrogatepass")
    batch = parse_chunk(data, allow_header=False)
    texts = data.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")
    non_blank = [i + 1 for i, text in enumerate(texts) if text.strip()]
    assert sorted(batch.lines + [r.line for r in batch.rejections]) == non_blank
    for line, values in zip(batch.lines, batch.rows(), strict=True):
        expected, _ = check_fields(split_fields(texts[line - 1]))
        assert values == expected


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_any_bytes_end_as_records_or_rejections(data: bytes) -> None:
    batch = parse_chunk(data, allow_header=False)
    accounted = sorted(batch.lines + [r.line for r in batch.rejections])
    assert len(accounted) == len(set(accounted))
    lines = data.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").split(b"\n")
    expected = [i + 1 for i, raw in enumerate(lines) if raw.decode("utf-8", errors="replace").strip()]
    assert accounted == expected
