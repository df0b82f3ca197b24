"""Top-n selection over dense score rows, shared by batch recommendation and the request path.

Equal scores within a list are ordered by column index, so a batch of users and one user at
a time select the same items in the same order.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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


def sparse_top_n(scores: sp.csr_matrix, n: int, exclude: sp.csr_matrix | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_n` of the rows of a sparse score matrix (an absent entry scores 0), with
    the entries of ``exclude`` (same shape) excluded, without a dense row.

    Every list is ordered by score, then column; unlike :func:`top_n`, a tie at the cut-off
    keeps the lowest columns, so the columns that fill a list with zero scores are the
    lowest ones the user has not seen. Slots with no item left are ``-inf``.
    """
    n_rows, n_cols = scores.shape
    n = min(n, n_cols)
    cols = np.zeros((n_rows, n), dtype=np.int64)
    values = np.full((n_rows, n), -np.inf, dtype=np.float32)
    scores = sp.csr_matrix(scores)
    for row in range(n_rows):
        found = scores.indices[scores.indptr[row]:scores.indptr[row + 1]]
        found_values = scores.data[scores.indptr[row]:scores.indptr[row + 1]]
        banned = np.empty(0, np.int64)
        if exclude is not None:
            banned = exclude.indices[exclude.indptr[row]:exclude.indptr[row + 1]]
            allowed = ~np.isin(found, banned)
            found, found_values = found[allowed], found_values[allowed]
        if np.count_nonzero(found_values > 0) < n:  # zero scores may enter: the lowest
            taken = np.union1d(found, banned)
            zeros = np.setdiff1d(np.arange(min(n + len(taken), n_cols)), taken)[:n]
            found = np.r_[found, zeros]
            found_values = np.r_[found_values, np.zeros(len(zeros), found_values.dtype)]
        order = np.lexsort((found, -found_values))[:n]
        cols[row, :len(order)] = found[order]
        values[row, :len(order)] = found_values[order]
    return cols, values
