"""The prediction API: validate and score the records of one request, answer in the response."""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from predictflow.api import Scored, Scorer, create_app
from predictflow.pipeline.runtime import build_bundles
from predictflow.pipeline.settings import Settings

logger = Logger()
tracer = Tracer(auto_patch=False)  # AWS calls are traced from the first client on (runtime.LazyClient)
metrics = Metrics()
settings = Settings.from_env()
scorer = Scorer(build_bundles(settings, scoring=True), aml_model_ids=[settings.aml_model_id])


def scored(route: str, outcome: Scored) -> None:
    # Counts and the version only: a record's content never reaches the log.
    logger.info(
        "scored request",
        extra={"route": route, "predicted": outcome.predicted, "rejected": outcome.rejected,
               "model_version": outcome.model_version},
    )  # fmt: skip
    metrics.add_metric(name="ApiRecordsPredicted", unit=MetricUnit.Count, value=outcome.predicted)
    metrics.add_metric(name="ApiRecordsRejected", unit=MetricUnit.Count, value=outcome.rejected)


app = create_app(scorer, scored)
# A refused request adds no metric; powertools would warn about that on every one.
warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
