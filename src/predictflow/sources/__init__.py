"""Stream sources: records that arrive as messages (SQS now) instead of as a file in S3.

    messages.py  a message body -> its records, or why it is poison
    router.py    records -> the API's Scorer (same parser, bundle and predictor as files) ->
                 prediction lines in the output bucket and dead letters in the table, keyed by
                 message so that a redelivery rewrites the same keys

functions/stream is the thin Lambda over these, fed by an SQS event source mapping
(docs/streams.md).
"""

from predictflow.sources.messages import MAX_MESSAGE_BYTES, Message, PoisonMessage, records_of
from predictflow.sources.router import StreamOutputs, StreamRouter

__all__ = (
    "MAX_MESSAGE_BYTES",
    "Message",
    "PoisonMessage",
    "StreamOutputs",
    "StreamRouter",
    "records_of",
)
