"""Backend failures, named so that the state machine can route them. The class names are the
`errorType` the state machine sees, so Retry and Catch can tell a throttle (retry) from a bad
request (dead-letter at once):

    retryable:      PredictorThrottled, PredictorUnavailable, PredictorTimeout
    not retryable:  PredictorBadRequest, PredictorModelError
"""

from __future__ import annotations

from typing import ClassVar, Final


class PredictorError(Exception):
    """A backend failure."""

    retryable: ClassVar[bool] = False


class PredictorThrottled(PredictorError):
    retryable = True


class PredictorUnavailable(PredictorError):
    retryable = True


class PredictorTimeout(PredictorError):
    retryable = True


class PredictorBadRequest(PredictorError):
    """The backend refused the request itself (unknown endpoint, invalid input)."""


class PredictorModelError(PredictorError):
    """The model answered, but not with the scores its bundle describes; or it cannot run here
    (a bundle that needs ONNX Runtime, on a stack deployed without it)."""


RETRYABLE_ERRORS: Final = tuple(
    cls.__name__ for cls in (PredictorThrottled, PredictorUnavailable, PredictorTimeout)
)
