"""Pages of a listing, as the AWS CLI gives them: `--max-items N` items, then a NextToken
that `--starting-token` takes to go on.

The token says where the last page ended (the sort key of its last item), not how many items
came before it: an item added meanwhile, or removed, moves no other item from one page to
another. It is plain data (base64 of JSON), so it works in any later process."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
SortKey = list[str | int]


class BadToken(ValueError):
    """A starting token this listing did not print."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None
    """Where the next page starts; None when nothing remains."""


def encode(after: SortKey, listing: str) -> str:
    data = json.dumps({"listing": listing, "after": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def decode(token: str, listing: str) -> SortKey:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = data["after"]
        same_listing = data["listing"] == listing
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise BadToken("not a NextToken this command printed") from None
    if not same_listing or not isinstance(after, list):
        # A token of another listing would compare keys of another shape.
        raise BadToken(f"a NextToken of another listing, not of {listing}")
    return after


def page(
    items: Sequence[T],
    key: Callable[[T], SortKey],
    *,
    listing: str,
    max_items: int | None = None,
    starting_token: str | None = None,
) -> Page[T]:
    """The items after `starting_token`, at most `max_items` of them, in `key` order (keys
    must be unique: the last item's key is where the next page starts)."""
    ordered = sorted(items, key=key)  # type: ignore[arg-type,return-value]
    if starting_token:
        after = decode(starting_token, listing)
        ordered = [item for item in ordered if key(item) > after]  # type: ignore[operator]
    if max_items is None or len(ordered) <= max_items:
        return Page(ordered, None)
    taken = ordered[:max_items]
    return Page(taken, encode(key(taken[-1]), listing))
