"""The CLI's quality metrics agree with scikit-learn's."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss, roc_auc_score

from predictflow.metrics import quality


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0])),
        min_size=2,
        max_size=60,
    ).filter(lambda pairs: len({label for label, _ in pairs}) == 2)
)
def test_auc_and_log_loss_match_scikit_learn_including_ties(pairs: list[tuple[int, float]]) -> None:
    labels = np.array([label for label, _ in pairs])
    scores = np.array([score for _, score in pairs])
    result = quality(labels, scores)
    assert abs(result.roc_auc - roc_auc_score(labels, scores)) < 1e-12
    assert abs(result.log_loss - log_loss(labels, np.clip(scores, 1e-15, 1 - 1e-15))) < 1e-9
    assert result.accuracy == np.mean((scores >= 0.5) == (labels == 1))
