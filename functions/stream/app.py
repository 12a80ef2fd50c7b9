"""Stream source: score the records of SQS messages, report the messages that must be retried.

An SQS event source mapping with ReportBatchItemFailures calls this with a batch of messages.
Each message is routed on its own (`sources.StreamRouter`); one whose storage writes failed is
reported as a batch item failure, so the queue redelivers that message alone. A poison message
is dead-lettered and reported as a success: it must never block the queue.
"""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from predictflow.api import Scorer
from predictflow.pipeline.runtime import LazyClient, build_bundles
from predictflow.pipeline.settings import Settings
from predictflow.pipeline.stores import DeadLetterStore
from predictflow.sources import Message, StreamOutputs, StreamRouter

logger = Logger()
tracer = Tracer()
metrics = Metrics()
settings = Settings.from_env()
router = StreamRouter(
    Scorer(build_bundles(settings, scoring=True)),
    StreamOutputs(LazyClient("s3"), settings.output_bucket, settings.predictions_prefix),
    DeadLetterStore(LazyClient("dynamodb"), settings.dead_letter_table),
)
warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)


def route(record: SQSRecord) -> None:
    queue = record.event_source_arn.rsplit(":", 1)[-1]
    routed = router.route(Message("sqs", queue, record.message_id, record.body, record.event_source_arn))
    # Counts and the version only: a record's content never reaches the log.
    logger.info(
        "routed message",
        extra={"message_id": record.message_id, "predicted": routed.predicted, "rejected": routed.rejected,
               "poison": routed.poison, "model_version": routed.model_version},
    )  # fmt: skip
    metrics.add_metric(name="StreamRecordsPredicted", unit=MetricUnit.Count, value=routed.predicted)
    metrics.add_metric(name="DeadLetteredRecords", unit=MetricUnit.Count, value=routed.rejected)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A processor per invocation: it keeps the batch's outcomes on itself.
    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(event=event, record_handler=route, processor=processor, context=context)
    )
