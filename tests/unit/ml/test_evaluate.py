"""AP against values computed by hand, junk handling, label retrieval and N-S."""

from __future__ import annotations

import numpy as np
import pytest

from imgsearch_gui.ml.evaluate import (
    average_precision,
    compute_ap,
    label_retrieval,
    ns_score,
    precision_at,
)


def test_perfect_ranking_has_ap_one():
    assert compute_ap([0, 1, 2], 3) == pytest.approx(1.0)


def test_ap_by_hand():
    # positives at 0-based ranks 0 and 2 of 2 positives:
    # j=0, rank 0: (1 + 1) * 0.5 / 2 = 0.5 ; j=1, rank 2: (1/2 + 2/3) * 0.5 / 2 = 0.291666..
    assert compute_ap([0, 2], 2) == pytest.approx(0.5 + (0.5 + 2 / 3) / 4)


def test_ap_counts_missing_positives_as_zero():
    # one of two positives never retrieved: only the first contributes.
    assert compute_ap([1], 2) == pytest.approx((0 + 0.5) * 0.5 / 2)


def test_junk_is_removed_before_counting():
    ranking = [7, 3, 5, 1]  # 7 is junk; 3 and 1 are positives
    with_junk = average_precision(ranking, {3, 1}, junk={7})
    # without 7 the ranking is [3, 5, 1]: positives at 0 and 2
    assert with_junk == pytest.approx(compute_ap([0, 2], 2))
    assert average_precision(ranking, {3, 1}) == pytest.approx(compute_ap([1, 3], 2))


def test_precision_at_k_skips_junk():
    assert precision_at([9, 1, 2, 3], {1, 3}, 2, junk={9}) == 0.5
    assert precision_at([1, 3, 4], {1, 3}, 2) == 1.0


def test_label_retrieval_excludes_the_query_itself():
    # two classes, perfectly separated: every query finds its classmates first.
    v = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.1, 0.99]], dtype=np.float32)
    scores = label_retrieval(v, ["a", "a", "b", "b"])
    assert scores.map == pytest.approx(1.0) and scores.mp_at_1 == 1.0
    assert scores.n_queries == 4 and scores.mp_at_5 == pytest.approx(0.2)


def test_label_retrieval_by_hand():
    # query 0 (class a): ranking of the others by similarity: 2(b), 1(a), 3(b) -> AP for rank 1.
    v = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    s = label_retrieval(v, ["a", "a", "b", "c"])
    assert s.n_queries == 2  # b and c have no classmates
    assert s.per_query_ap[0] == pytest.approx(compute_ap([1], 1))


def test_ns_score_counts_the_query():
    v = np.eye(8, dtype=np.float32)
    v[1] = v[0]
    groups = [0, 0, 0, 0, 1, 1, 1, 1]
    # each image finds itself; images 0 and 1 also find each other; then ties go by index order.
    score = ns_score(v, groups)
    assert 1.0 <= score <= 4.0
    perfect = np.repeat(np.eye(2, dtype=np.float32), 4, axis=0)
    assert ns_score(perfect, groups) == 4.0


def test_label_retrieval_reports_which_rows_were_queries():
    v = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    s = label_retrieval(v, ["a", "a", "b", "c"])
    assert s.query_rows == (0, 1) and len(s.per_query_ap) == 2
