"""Fetch: claim the new object version and plan its byte-range chunks, or predict a small
file whole (see `steps.fetch`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from predictflow.memory import retain_freed_memory
from predictflow.pipeline import steps
from predictflow.pipeline.runtime import build_bundles, build_stores, log_keys
from predictflow.pipeline.settings import Settings

logger = Logger()
tracer = Tracer(auto_patch=False)  # AWS calls are traced from the first client on (runtime.LazyClient)
metrics = Metrics()
retain_freed_memory()  # chunk after chunk of one size: keep what one frees for the next
settings = Settings.from_env()
stores = build_stores(settings)
# With the embedded backend, Fetch predicts small files itself; the model is loaded on the
# first such file, so a container that only plans large files never pays for it.
bundles = build_bundles(settings, scoring=settings.predictor_backend == "embedded")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(**log_keys(event))
    plan = steps.fetch(event["event"], event["execution_arn"], settings, stores, bundles)
    if plan["duplicate"]:
        logger.info("duplicate event: object already claimed", extra={"claimed_by": plan["claimed_by"]})
        metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
    elif plan["finished"]:
        predicted = plan["summary"]["predicted"]
        logger.info("predicted whole file", extra={"predicted": predicted})
        metrics.add_metric(name="RecordsPredicted", unit=MetricUnit.Count, value=predicted)
    else:
        logger.info("planned chunks", extra={"chunks": len(plan["chunks"]), "bytes": plan["object"]["size"]})
        metrics.add_metric(name="ChunksPlanned", unit=MetricUnit.Count, value=len(plan["chunks"]))
    return plan
