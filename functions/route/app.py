"""Route: write each record to the predictions or the dead-letter output, and close the file."""

from __future__ import annotations

from collections.abc import Callable
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

ACTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "route_chunk": lambda event: steps.route_chunk(event, stores, bundles, settings.replay_prefix),
    "dead_letter_chunk": lambda event: steps.dead_letter_chunk(event, stores, settings.replay_prefix),
    "dead_letter_file": lambda event: steps.dead_letter_file(event, stores),
    "finalize": lambda event: steps.finalize(event, stores),
    "close_unfinished_file": lambda event: steps.close_unfinished_file(event, stores),
    "execution_ended": lambda event: steps.execution_ended(event, stores),
}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The state machine names an action; EventBridge's execution status events carry none.
    action = "execution_ended" if event.get("detail-type") == steps.EXECUTION_ENDED else event["action"]
    logger.append_keys(**log_keys(event), action=action)
    if "chunk" in event:  # a chunk's routing or dead-lettering: which chunk, as Validate's lines say
        logger.append_keys(chunk=event["chunk"]["index"])
    result = ACTIONS[action](event)
    counts = {k: v for k, v in result.items() if k in ("status", "records", "predicted", "dead_lettered")}
    logger.info(f"{action} done", extra=counts)
    if action == "route_chunk":
        metrics.add_metric(name="PredictionsWritten", unit=MetricUnit.Count, value=result["predicted"])
    # The dead-letter alarm watches this metric: anything written to the table counts.
    metrics.add_metric(
        name="DeadLetteredRecords", unit=MetricUnit.Count, value=result["dead_letters_written"]
    )
    return result
