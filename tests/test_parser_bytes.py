"""The byte-level parser gives exactly what `check_record` gives, line by line, for any bytes.

`parse_chunk` reads plain lines straight from a chunk's bytes and hands every other line to the
text tiers. `parse_chunk_reference` runs `check_record` on every line. The two must agree on
everything a caller sees: which lines are records, the feature matrix bit for bit, every
rejection (line, excerpt, reason, message, raw bytes), targets, row ids, layout and ignored
columns. The text fast path (`path="text"`) is held to the same reference.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from predictflow import records
from predictflow.bundle import CompiledSchema
from predictflow.bundle.format import FieldSpec, ModelSpec, RecordSchema
from predictflow.errors import MissingColumns
from predictflow.records import BOM, Layout, ParsedBatch, parse_chunk, parse_chunk_reference
from tests.fixtures import ADULT_DATA, SCHEMA


def _schema(fields: list[dict[str, Any]], target: dict[str, Any]) -> CompiledSchema:
    described = {"name": "wide", "fields": fields, "target": target}
    return CompiledSchema(RecordSchema.from_dict(described).as_bundle(ModelSpec("onnx", sha256="-")))


# What the Adult schema lacks: a row id, binary and decimal fields, missing markers on numbers, an
# integer without a range, categories that are not plain ASCII or hold spaces, a multiclass target
# with aliases and a missing marker; and a regression target.
_FIELDS: list[dict[str, Any]] = [
    {"name": "id", "type": "string", "role": "id"},
    {"name": "i", "type": "integer", "range": [-50, 50], "missing": ["", "NA"]},
    {"name": "n", "type": "number", "range": [-1000, 1000], "missing": ["?"]},
    {"name": "u", "type": "integer"},
    {
        "name": "c",
        "type": "category",
        "categories": ["a", "New York", "Café", "Outlying-US(Guam)"],
        "missing": ["?"],
    },
    {"name": "b", "type": "binary", "missing": ["-"]},
]
WIDE = _schema(
    [*_FIELDS, {"name": "y", "type": "category", "role": "target", "missing": ["unknown"]}],
    {"name": "y", "task": "multiclass", "labels": ["lo", "mid", "hi"], "aliases": {"HI": "hi", "lo.": "lo"}},
)
REGRESSION = _schema(
    [*_FIELDS, {"name": "y", "type": "number", "role": "target"}], {"name": "y", "task": "regression"}
)

_HOSTILE = ["", " ", "\t", '"', '"a,b"', "\x00", "\r", "\x1c", "\x85", "\u2028", "\ufeff", "é", ",", "\\"]
_NUMBERS = [
    "0", "-0", "+7", "007", "-50", "50", "51", "1e2", "-1.5e1", ".5", "5.", "1e999", "nan", "inf", "1_0",
    "9" * 16, "9" * 17, "-" + "9" * 20, "٣", "12345678", "123456789", "+", "-", "--1", "1-", "0x10",
]  # fmt: skip


def _spec(schema: CompiledSchema, name: str) -> FieldSpec | None:
    return next((spec for spec in schema.spec.fields if spec.name == name), None)


def _valid(schema: CompiledSchema, name: str) -> st.SearchStrategy[str]:
    """Values `check_record` accepts, limits included."""
    spec = _spec(schema, name)
    if name == schema.target.name:
        return (
            st.sampled_from([*schema.labels, *schema.target_missing] or [""])
            if schema.labels
            else st.one_of(st.floats(-1e6, 1e6).map(repr), st.sampled_from(sorted(schema.target_missing)))
        )
    if spec is None or spec.type == "string":  # the row id, or a column the bundle does not know
        return st.text(
            st.characters(min_codepoint=33, max_codepoint=126, exclude_characters='",'), max_size=6
        )
    if spec.type == "category":
        return st.sampled_from([*spec.categories, *spec.missing])
    if spec.type == "binary":
        return st.sampled_from(["0", "1", "y", "no", "true", "f", *spec.missing])
    low, high = spec.range if spec.range is not None else (-1e15, 1e15)
    limits = st.sampled_from([str(int(low)), str(int(high)), *spec.missing])
    if spec.type == "integer":
        return st.one_of(limits, st.integers(int(low), int(high)).map(str))
    return st.one_of(limits, st.floats(low, high).map(repr), st.integers(int(low), int(high)).map(str))


def _odd(schema: CompiledSchema, name: str) -> st.SearchStrategy[str]:
    """Values next to valid ones: out of range, other spellings, other spacing, noise."""
    spec = _spec(schema, name)
    near: list[str] = ["", "?", "x", "NA"]
    if name == schema.target.name:
        near += ["LO", "lo ", "3.5", "-1e3", "1e999", "nan"]
    elif spec is not None and spec.type in ("category", "binary"):
        near += ["Nope", "private", "New  York", "Cafe", "YES", "True", "2", "-"]
    elif spec is not None and spec.type in ("integer", "number"):
        near += _NUMBERS
        if spec.range is not None:
            low, high = (int(bound) for bound in spec.range)
            near += [str(low - 1), str(high + 1), f"{low}.0", f"+{high}", f"-{low}", f"{high}e0"]
    return st.one_of(
        st.sampled_from(near),
        _valid(schema, name).map(lambda text: f" {text}  "),
        st.text(max_size=4),
    )


_SEPARATORS = st.sampled_from([",", ",", ", ", ", ", ", ", ", ", " ,", ",  ", ",\t"])


@st.composite
def _line(draw: st.DrawFn, schema: CompiledSchema, names: list[str]) -> bytes:
    kind = draw(st.integers(0, 14))
    if kind == 0:
        return draw(st.binary(max_size=30)).replace(b"\n", b"")
    if kind == 1:
        return draw(st.text(max_size=20)).encode("utf-8", errors="surrogatepass").replace(b"\n", b"")
    if kind == 2:
        return draw(st.sampled_from([b"", b"  ", b"\t", b" \t ", b"\r"]))
    columns = names if draw(st.booleans()) else names[:-1]  # with or without the last column
    # Mostly valid records with a few values changed, so that a line the byte path wrongly
    # accepted would show.
    cells = [draw(_valid(schema, name)) for name in columns]
    changed = (
        draw(st.lists(st.integers(0, max(len(cells) - 1, 0)), max_size=2)) if draw(st.booleans()) else []
    )
    for place in changed if cells else []:
        cells[place] = draw(_odd(schema, columns[place]))
    if kind == 3:  # a field too many or too few
        cells = cells[1:] if draw(st.booleans()) else [*cells, "extra"]
    separator = draw(_SEPARATORS)
    text = (
        separator.join(cells)
        if draw(st.booleans())
        else "".join((draw(_SEPARATORS) if place else "") + cell for place, cell in enumerate(cells))
    )
    raw = text.encode("utf-8", errors="surrogatepass")
    if kind == 4:  # one hostile character or byte somewhere in an otherwise plain line
        at = draw(st.integers(0, len(raw)))
        odd = draw(st.one_of(st.sampled_from(_HOSTILE).map(str.encode), st.binary(min_size=1, max_size=2)))
        raw = raw[:at] + odd.replace(b"\n", b"") + raw[at:]
    return raw


@st.composite
def _chunk(draw: st.DrawFn, schema: CompiledSchema) -> tuple[bytes, dict[str, Any]]:
    names = [spec.name for spec in schema.spec.fields]
    header: bytes | None = None
    if draw(st.booleans()):
        names = draw(st.permutations(names))
        if draw(st.booleans()):
            names = [*names, "note"]
        if draw(st.booleans()):
            names = names[1:]  # a header may lack a column the model needs
        header = draw(_SEPARATORS).join(names).encode()
    lines = draw(st.lists(_line(schema, names), max_size=25))
    if header is not None:
        lines = [header, *lines]
    endings = draw(st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=len(lines), max_size=len(lines)))
    data = b"".join(line + ending for line, ending in zip(lines, endings, strict=True))
    if draw(st.booleans()):
        data = data.removesuffix(endings[-1]) if endings else data
    if draw(st.booleans()):
        data = BOM + data
    first_line = draw(st.sampled_from([1, 1, 2, 101]))
    layout = draw(st.sampled_from([None, None, Layout("csv")]))
    if header is not None and first_line != 1 and draw(st.booleans()):
        layout = Layout("csv", tuple(name.strip() for name in header.decode().split(",")), header.decode())
    hint = draw(st.sampled_from([None, None, "present", "absent"]))
    return data, {"first_line": first_line, "layout": layout, "header_hint": hint}


_PLAIN: dict[str, Any] = {"first_line": 1, "layout": None, "header_hint": None}


def _seen(batch: ParsedBatch) -> tuple[Any, ...]:
    """Everything a caller of `parse_chunk` sees; the matrix as its bytes (NaNs included)."""
    return (
        batch.lines,
        batch.features.dtype,
        batch.features.shape,
        batch.features.tobytes(),
        batch.rejections,
        batch.actual,
        batch.ids,
        batch.layout,
        batch.ignored_columns,
    )


def _outcome(parse: Any, data: bytes, schema: CompiledSchema, arguments: dict[str, Any]) -> tuple[Any, ...]:
    try:
        return _seen(parse(data, schema, arguments["first_line"], layout=arguments["layout"],
                           header_hint=arguments["header_hint"]))  # fmt: skip
    except MissingColumns as error:
        return ("missing columns", str(error))


def _assert_agrees(data: bytes, schema: CompiledSchema, arguments: dict[str, Any]) -> None:
    reference = _outcome(parse_chunk_reference, data, schema, arguments)
    assert _outcome(parse_chunk, data, schema, arguments) == reference
    text = _outcome(lambda *a, **k: parse_chunk_reference(*a, **k, path="text"), data, schema, arguments)
    assert text == reference


# Found by mutating the byte path: a dropped sign, a range off by one.
@example(
    (
        b"-50,Private,1,Bachelors,1,Married-civ-spouse,Tech-support,Wife,White,Female,0,0,1,United-States\n",
        _PLAIN,
    )
)
@example((b"16, Private, 1, Bachelors, 1, Divorced, Sales, Wife, White, Male, 0, 0, 40, Cuba\r\n", _PLAIN))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_chunk(SCHEMA))
def test_the_byte_path_equals_check_record_on_adult_chunks(chunk: tuple[bytes, dict[str, Any]]) -> None:
    _assert_agrees(chunk[0], SCHEMA, chunk[1])


# Found: the text fast path accepted a mid-file line starting with a byte-order mark (or holding
# a NUL) when the field it sat in was the row id; check_record rejects it.
@example((b"\xef\xbb\xbf,-50,-1000,-1000000000000000,a,0\n", _PLAIN | {"first_line": 2}))
@example((b"r\x00,-50,-1000,1,a,0\n", _PLAIN | {"first_line": 2}))
# Found by mutating the byte path: a missing marker read as 0, a middle word not compared.
@example((b",-50,?,-1000000000000000,a,0\n", _PLAIN))
@example((b"x,1,2,3,Outlying+US(Guam),1,lo\n", _PLAIN))  # differs only in bytes 8-9
# A quote or a lone CR in the row id: csv and str.strip read them, the byte path must not.
@example((b'"r1",1,2,3,a,1,lo\n', _PLAIN))
@example((b"r1\r,1,2,3,a,1,lo\n", _PLAIN))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_chunk(WIDE))
def test_the_byte_path_equals_check_record_with_ids_binaries_decimals_and_labels(
    chunk: tuple[bytes, dict[str, Any]],
) -> None:
    _assert_agrees(chunk[0], WIDE, chunk[1])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_chunk(REGRESSION))
def test_the_byte_path_equals_check_record_with_a_regression_target(
    chunk: tuple[bytes, dict[str, Any]],
) -> None:
    _assert_agrees(chunk[0], REGRESSION, chunk[1])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([1, 2]))
def test_the_byte_path_equals_check_record_on_any_bytes(data: bytes, first_line: int) -> None:
    _assert_agrees(data, SCHEMA, _PLAIN | {"first_line": first_line})


# A chunk longer than BYTE_PATH_SLICE_BYTES is read a slice of whole lines at a time: the same
# outcome, whichever lines the cuts fall between (a header, a long line, a blank run, CRLF, the
# last line without a line feed).
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([SCHEMA, WIDE, REGRESSION]).flatmap(
        lambda schema: st.tuples(st.just(schema), _chunk(schema))
    ),
    st.integers(min_value=1, max_value=120),
)
def test_a_chunk_read_in_slices_equals_check_record(
    drawn: tuple[CompiledSchema, tuple[bytes, dict[str, Any]]], slice_bytes: int
) -> None:
    schema, (data, arguments) = drawn
    reference = _outcome(parse_chunk_reference, data, schema, arguments)
    with patch.object(records, "BYTE_PATH_SLICE_BYTES", slice_bytes):
        assert _outcome(parse_chunk, data, schema, arguments) == reference


def test_a_header_in_a_later_slice_is_still_the_header() -> None:
    header = ", ".join(spec.name for spec in SCHEMA.spec.fields).encode()
    record = ADULT_DATA.read_bytes().splitlines()[0]
    data = b"\n" * 5 + header + b"\n" + record + b"\n" + record + b"\n"
    reference = _outcome(parse_chunk_reference, data, SCHEMA, _PLAIN)
    with patch.object(records, "BYTE_PATH_SLICE_BYTES", 3):
        assert _outcome(parse_chunk, data, SCHEMA, _PLAIN) == reference
        assert parse_chunk(data, SCHEMA).lines == [7, 8]


def test_the_whole_training_split_is_read_by_the_byte_path_as_by_check_record() -> None:
    data = ADULT_DATA.read_bytes()
    batch = parse_chunk(data, SCHEMA)
    assert len(batch) == 32_561
    assert _seen(batch) == _seen(parse_chunk_reference(data, SCHEMA))
