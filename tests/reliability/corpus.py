"""Hostile inputs, each with what must become of it. Built in code so every byte is visible."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

from tests.fixtures import ARTICLE, FEATURES, HEADER, with_field


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    predicted: int
    dead_letters: dict[str, int] = field(default_factory=dict)
    """error_type -> how many entries of it."""


def _limits() -> tuple[list[str], list[str]]:
    inside, outside = [], []
    for index, f in enumerate(FEATURES):
        if f.range is not None:
            low, high = (int(bound) for bound in f.range)
            inside += [with_field(index, str(low)), with_field(index, str(high))]
            outside += [with_field(index, str(low - 1)), with_field(index, str(high + 1))]
    return inside, outside


INSIDE, OUTSIDE = _limits()
LINES = f"{ARTICLE}\n{ARTICLE}\n"

# fmt: off
CASES = [
    Case("empty", b"", 0, {"NoRecords": 1}),
    Case("header-only", f"{HEADER}\n".encode(), 0, {"NoRecords": 1}),
    Case("whitespace-only", b" \n\t\n\r\n   ", 0, {"NoRecords": 1}),
    # 256 byte values, 4 times: five lines, each with a NUL or a byte that is not UTF-8.
    Case("binary-garbage", bytes(range(256)) * 4, 0, {"EncodingError": 5}),
    Case("gzip-bytes", gzip.compress(LINES.encode() * 50, mtime=0), 0, {"EncodingError": 2}),
    # BOM + UTF-16LE: "\n" is 0A 00, so the bytes split into 3 lines, none of them UTF-8 text.
    Case("utf-16", LINES.encode("utf-16"), 0, {"EncodingError": 3}),
    Case(
        "latin-1",
        with_field(13, "Côte-d'Ivoire").encode("latin-1") + b"\n" + ARTICLE.encode(),
        1,
        {"EncodingError": 1},
    ),
    Case("utf-8-bom-crlf", b"\xef\xbb\xbf" + LINES.replace("\n", "\r\n").encode(), 2),
    Case(
        "mixed-separators",
        f"{ARTICLE}\n{ARTICLE.replace(', ', ',')}\n{ARTICLE.replace(', ', ';')}\n".encode(),
        2,
        {"FieldCountError": 1},
    ),
    Case(
        "13-and-16-fields",
        f"{', '.join(ARTICLE.split(', ')[:13])}\n{ARTICLE}, >50K, extra\n".encode(),
        0,
        {"FieldCountError": 2},
    ),
    Case(
        "quoted-commas",
        f'{ARTICLE}\n39, "Private, Inc", {", ".join(ARTICLE.split(", ")[2:])}\n'.encode(),
        1,
        {"UnknownCategory": 1},
    ),
    Case(
        "bad-numbers",
        "\n".join(
            with_field(i, v) for i, v in [(0, "forty"), (12, "-5"), (0, "NaN"), (2, "inf"), (4, "9.5")]
        ).encode(),
        0,
        {"InvalidValue": 5},
    ),
    Case("range-limits", "\n".join(INSIDE + OUTSIDE).encode(), len(INSIDE), {"InvalidValue": len(OUTSIDE)}),
    Case(
        "unknown-categories",
        f"{with_field(8, 'Martian')}\n{with_field(13, 'Atlantis')}\n{ARTICLE}".encode(),
        1,
        {"UnknownCategory": 2},
    ),
    Case("one-megabyte-line", f"{ARTICLE}\n{'x' * 1_048_576}\n{ARTICLE}\n".encode(), 2, {"LineTooLong": 1}),
]
# fmt: on
