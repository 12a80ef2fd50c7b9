"""Stream source: score the records of SQS messages or Kinesis records, report those to retry.

An SQS or Kinesis event source mapping with ReportBatchItemFailures calls this with a batch.
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
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from predictflow.api import Scorer
from predictflow.pipeline.runtime import LazyClient, build_bundles
from predictflow.pipeline.settings import Settings
from predictflow.pipeline.stores import DeadLetterStore
from predictflow.sources import Message, StreamOutputs, StreamRouter
from predictflow.sources.router import Routed

logger = Logger()
tracer = Tracer(auto_patch=False)  # AWS calls are traced from the first client on (runtime.LazyClient)
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
    count(router.route(Message("sqs", queue, record.message_id, record.body, record.event_source_arn)))


def route_kinesis(record: KinesisStreamRecord) -> None:
    # eventID is "<shard id>:<sequence number>": the record's identity across redeliveries.
    shard = record.event_id.split(":", 1)[0]
    arn = record.event_source_arn
    message = Message("kinesis", arn.rsplit("/", 1)[-1], f"{shard}/{record.kinesis.sequence_number}",
                      record.kinesis.data_as_text(), arn)  # fmt: skip
    count(router.route(message))


def count(routed: Routed) -> None:
    # Counts and the version only: a record's content never reaches the log.
    logger.info(
        "routed message",
        extra={"predicted": routed.predicted, "rejected": routed.rejected,
               "poison": routed.poison, "model_version": routed.model_version},
    )  # fmt: skip
    metrics.add_metric(name="StreamRecordsPredicted", unit=MetricUnit.Count, value=routed.predicted)
    metrics.add_metric(name="DeadLetteredRecords", unit=MetricUnit.Count, value=routed.rejected)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A processor per invocation: it keeps the batch's outcomes on itself.
    handler: Any
    if (event.get("Records") or [{}])[0].get("eventSource") == "aws:kinesis":
        processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
        handler = route_kinesis
    else:
        processor = BatchProcessor(event_type=EventType.SQS)
        handler = route
    return dict(
        process_partial_response(event=event, record_handler=handler, processor=processor, context=context)
    )
