"""Cholesky factors of many small matrices at once, written out element by element.

A q x q matrix is a list of rows of arrays (or PyTensor tensors, or anything
with + - * /): every operation is elementwise over a batch (draws, groups,
designs), so q = 2 or 3 costs a few vector operations instead of a loop of
tiny LAPACK calls. NumPy and PyTensor code share these functions.
"""

from __future__ import annotations


def cholesky(a, sqrt):
    """Lower factor L of symmetric positive definite `a` (only a[i][j], j <= i, are read)."""
    q = len(a)
    low = [[0.0] * q for _ in range(q)]
    for i in range(q):
        for j in range(i + 1):
            s = a[i][j]
            for k in range(j):
                s = s - low[i][k] * low[j][k]
            low[i][j] = sqrt(s) if i == j else s / low[j][j]
    return low


def forward(low, b):
    """x with L x = b (L lower triangular, b a list of q arrays)."""
    x = []
    for i in range(len(low)):
        s = b[i]
        for k in range(i):
            s = s - low[i][k] * x[k]
        x.append(s / low[i][i])
    return x


def backward(low, b):
    """x with L' x = b."""
    q = len(low)
    x = [None] * q
    for i in reversed(range(q)):
        s = b[i]
        for k in range(i + 1, q):
            s = s - low[k][i] * x[k]
        x[i] = s / low[i][i]
    return x


def sum_squares(v):
    total = v[0] * v[0]
    for x in v[1:]:
        total = total + x * x
    return total
