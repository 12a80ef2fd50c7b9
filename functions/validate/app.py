"""Validate: read one chunk of the source object and check every line against the schema."""

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
bundles = build_bundles(settings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(**log_keys(event), chunk=event["chunk"]["index"])
    batch, counts = steps.validate(event, stores, bundles)
    logger.info("validated chunk", extra=counts)
    metrics.add_metric(name="RecordsValid", unit=MetricUnit.Count, value=counts["valid"])
    metrics.add_metric(name="RecordsRejected", unit=MetricUnit.Count, value=counts["rejected"])
    return batch
