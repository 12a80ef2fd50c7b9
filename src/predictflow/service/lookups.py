"""Forgiving lookups: what the user typed, matched to what the stack knows.

A source key given without the input prefix (`records.csv` for `incoming/records.csv`), and an
error type in any case (`invalidvalue`), are found; an error type that matches none names the
known ones."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from predictflow import errors


class UnknownErrorType(LookupError):
    """An --error-type that matches no known type, whatever its case."""


def source_key(given: str, input_prefix: str, known: Callable[[str], bool]) -> str:
    """`given` if the stack knows it, else `given` under the input prefix if it knows that
    (the rule starts executions only for keys under the prefix, so users often leave it off);
    else `given`, for the caller to report as not found."""
    if known(given) or given.startswith(input_prefix):
        return given
    prefixed = input_prefix + given.lstrip("/")
    return prefixed if known(prefixed) else given


def _subclasses(base: type[Exception]) -> Iterable[type[Exception]]:
    subclass: type[Exception]
    for subclass in base.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


def known_error_types() -> set[str]:
    """The error types the pipeline writes: each rejected line's reason, and the file-level
    errors its Lambdas raise (their class name is the type, as the state machine sees it)."""
    line_types = {reason.value for reason in errors.RejectReason}
    file_types = {cls.__name__ for cls in _subclasses(errors.PipelineError)}
    return line_types | file_types


def error_type(given: str, known: Iterable[str]) -> str:
    """The known type `given` names: itself, or the one equal to it but for case."""
    known = set(known)
    if given in known:
        return given
    matches = sorted(name for name in known if name.casefold() == given.casefold())
    if len(matches) == 1:
        return matches[0]
    if matches:  # types differing only in case: only the exact spelling can choose
        raise UnknownErrorType(f"{given!r} matches {', '.join(matches)}: give one exactly")
    raise UnknownErrorType(f"no error type {given!r}; known types: {', '.join(sorted(known))}")
