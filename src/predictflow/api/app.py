"""The prediction API's routes, as declarations over `scoring.Scorer`.

    POST /predict       {"records": [...], "model_version"?}  -> {"model_version", "predicted",
                        "rejected", "results": [prediction line | {"line", "error_type",
                        "error_message"}, ...]} in request order, 200 even when records fail
    POST /aml/predict   Amazon ML's Predict request -> {"Prediction": {...}}

Every response names the model version that answered in `X-Predictflow-Model-Version`. Errors
map to statuses in `errors.status_of`, once. Nothing here logs a record: `on_scored` receives
the outcome for counts and metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Final

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from predictflow.api.errors import JSON, error_body, status_of
from predictflow.api.models import AmlPredictRequest, PredictRequest, read_json
from predictflow.api.scoring import Scored, Scorer

PREDICT_PATH: Final = "/predict"
AML_PREDICT_PATH: Final = "/aml/predict"
VERSION_HEADER: Final = "X-Predictflow-Model-Version"


def create_app(
    scorer: Scorer, on_scored: Callable[[str, Scored], None] | None = None
) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()

    def document() -> object:
        event = app.current_event
        return read_json(event.headers.get("content-type"), event.decoded_body)

    def answer(route: str, scored: Scored, body: str) -> Response[str]:
        if on_scored is not None:
            on_scored(route, scored)
        return Response(200, JSON, body, headers={VERSION_HEADER: scored.model_version})

    @app.post(PREDICT_PATH)
    def predict() -> Response[str]:
        request = PredictRequest.from_document(document())
        scored = scorer.score(request.records, request.model_version)
        return answer(PREDICT_PATH, scored, scored.results_json())

    @app.post(AML_PREDICT_PATH)
    def aml_predict() -> Response[str]:
        request = AmlPredictRequest.from_document(document())
        scored = scorer.score([request.record], scorer.aml_version(request.model_id))
        prediction = scored.aml_prediction()
        return answer(AML_PREDICT_PATH, scored, json.dumps({"Prediction": prediction}, separators=(",", ":")))

    @app.not_found
    def not_found(_: Exception) -> Response[str]:
        event = app.current_event
        return Response(
            404,
            JSON,
            error_body("NotFound", f"no route {event.http_method} {event.path}; try POST {PREDICT_PATH}"),
        )

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def failed(error: Exception) -> Response[str]:
        status, body, headers = status_of(error)
        return Response(status, JSON, body, headers=headers)

    return app
