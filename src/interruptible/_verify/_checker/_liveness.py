"""Liveness over an explored graph: the states from which no good state is reachable.

Both explorers record every edge they follow (`edge_from[i] -> edge_to[i]`, states numbered in
breadth-first order); after the search, reverse reachability from the good states marks every
state that can reach one, and the shallowest state left unmarked is the counterexample.
"""

from __future__ import annotations

from array import array


def first_stuck(
    count: int,
    edge_from: array[int],
    edge_to: array[int],
    good: bytearray,
    required: bytearray | None = None,
) -> int | None:
    """The lowest-numbered state (of those `required` says must reach a good state, or all) from
    which no state marked in `good` is reachable; None when every one reaches one."""
    # Reverse adjacency in compressed form: the predecessors of t are pred[start[t]:start[t+1]].
    degree = array("i", bytes(4 * (count + 1)))
    for target in edge_to:
        degree[target + 1] += 1
    for index in range(count):
        degree[index + 1] += degree[index]
    start = array("i", degree)
    fill = array("i", degree)
    pred = array("i", bytes(4 * len(edge_to)))
    for source, target in zip(edge_from, edge_to, strict=True):
        pred[fill[target]] = source
        fill[target] += 1
    reach = bytearray(good)
    stack = [index for index in range(count) if reach[index]]
    while stack:
        target = stack.pop()
        for position in range(start[target], start[target + 1]):
            source = pred[position]
            if not reach[source]:
                reach[source] = 1
                stack.append(source)
    for index in range(count):  # states are numbered in breadth-first order
        if not reach[index] and (required is None or required[index]):
            return index
    return None
