"""The synchronous prediction API: API Gateway (REST) -> functions/api -> these routes.

    app.py       the routes (powertools' APIGatewayRestResolver), errors mapped once
    models.py    the requests and their limits, checked in the handler always
    scoring.py   records -> the file path's parser, bundle and predictor -> results
    errors.py    the errors and their HTTP statuses

See docs/api.md for the requests, the responses and the choices behind them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from predictflow.api.app import AML_PREDICT_PATH, PREDICT_PATH, VERSION_HEADER, create_app
    from predictflow.api.models import MAX_BODY_BYTES, MAX_RECORDS
    from predictflow.api.scoring import Scored, Scorer

_HOMES = {
    "AML_PREDICT_PATH": "app",
    "PREDICT_PATH": "app",
    "VERSION_HEADER": "app",
    "create_app": "app",
    "MAX_BODY_BYTES": "models",
    "MAX_RECORDS": "models",
    "Scored": "scoring",
    "Scorer": "scoring",
}
"""Where each name lives: imported on first use (PEP 562), so that a module that needs
`predictflow.api.errors` or `.models` (the stream sources, `predictflow send`) does not import
the routes and powertools' resolver, nor the stream function's cold start."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = (
    "AML_PREDICT_PATH",
    "MAX_BODY_BYTES",
    "MAX_RECORDS",
    "PREDICT_PATH",
    "VERSION_HEADER",
    "Scored",
    "Scorer",
    "create_app",
)
