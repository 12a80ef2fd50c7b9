"""The synchronous prediction API: API Gateway (REST) -> functions/api -> these routes.

    app.py       the routes (powertools' APIGatewayRestResolver), errors mapped once
    models.py    the requests and their limits, checked in the handler always
    scoring.py   records -> the file path's parser, bundle and predictor -> results
    errors.py    the errors and their HTTP statuses

See docs/api.md for the requests, the responses and the choices behind them.
"""

from predictflow.api.app import AML_PREDICT_PATH, PREDICT_PATH, VERSION_HEADER, create_app
from predictflow.api.models import MAX_BODY_BYTES, MAX_RECORDS
from predictflow.api.scoring import Scored, Scorer

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
