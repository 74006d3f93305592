r"""The matrix-chain ordering problem, by dynamic programming.

For $F_1 \cdots F_n$ with $F_i$ of shape $p_{i-1}\times p_i$, the cheapest parenthesisation
minimises the total $\sum p_a p_b p_c$ over its products. Two twists for the compiler:
a sub-chain may be *cheap* (already computed, or constant and hoisted out of the
per-call code), expressed as a weight in $[0, 1]$ on its own product cost; and a
sub-chain *shared* by several chains is amortised over its uses.
"""

from __future__ import annotations

from typing import Callable


def chain_order(dims: list[int], weight: Callable[[int, int], float],
                amortise: Callable[[int, int], int]) -> dict[tuple[int, int], int]:
    """`split[i, j] = k`: multiply $F_i..F_k$ by $F_{k+1}..F_j$ (0-based, inclusive)."""
    n = len(dims) - 1
    cost: dict[tuple[int, int], float] = {(i, i): 0.0 for i in range(n)}
    split: dict[tuple[int, int], int] = {}
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            best, neg_k = min((cost[i, k] + cost[k + 1, j] + dims[i] * dims[k + 1] * dims[j + 1], -k)
                               for k in range(i, j))
            split[i, j] = -neg_k  # ties: left to right, as a person writes it
            # A cheap (cached / hoisted) sub-chain costs a fraction; a shared one is paid once.
            cost[i, j] = best * weight(i, j) / amortise(i, j)
    return split


def tree_nodes(split: dict[tuple[int, int], int], i: int, j: int,
               stop: Callable[[int, int], bool] = lambda i, j: False) -> list[tuple[int, int]]:
    """The nodes $(i, j)$ of the product tree, pre-order; do not descend below `stop` nodes."""
    out = [(i, j)]
    if i == j or stop(i, j):
        return out
    k = split[i, j]
    return out + tree_nodes(split, i, k, stop) + tree_nodes(split, k + 1, j, stop)


def chain_cost(dims: list[int]) -> float:
    """Flops ($2pqr$ per product) of the best order of a chain with these dimensions."""
    n = len(dims) - 1
    if n < 2:
        return 0.0
    split = chain_order(dims, lambda i, j: 1.0, lambda i, j: 1)
    return sum(2.0 * dims[i] * dims[split[i, j] + 1] * dims[j + 1] for i, j in tree_nodes(split, 0, n - 1) if i != j)
