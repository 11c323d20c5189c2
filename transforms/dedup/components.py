"""Connected components of an edge PCollection, computed across workers (alternating large/small star).

Input: ``(u, v)`` edges between orderable node keys (bytes here). Output: ``(node, root)`` for every
node that appears in an edge, ``root`` the smallest node of its component.

The distributed path is the large-star / small-star algorithm of Kiveris et al., "Connected
Components in MapReduce and Beyond" (SoCC 2014): each round groups the edges by node (a shuffle),
and each node links its larger neighbours (large-star) or its smaller ones (small-star) to the
smallest node it sees. It converges in O(log^2 n) rounds, and a converged graph is a set of stars
centred on each component's minimum. Beam graphs cannot loop, so ``max_rounds`` rounds are unrolled;
the final labelling step checks locally that every node is a star centre or a leaf of one, and
counts the nodes where it is not (``cc_unconverged_nodes``). Labels from an unconverged graph are
still safe for deduplication: a node is only ever labelled with a node of its own component, so the
worst case is a component split in two, never two components merged.

When the whole graph has at most ``single_worker_max_edges`` edges, it is sent to one worker and
solved with union-find instead (the rounds then run on empty collections, which the local runner
does not send to its workers: ``pipelines/local/bounded_bundles.py``), which is faster for the
small graphs of small corpora and is bounded by configuration.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from corpusforge.transforms.base import StageCounters

Edge = tuple[Any, Any]
SMALL_TAG, LARGE_TAG = "small", "large"


# ---- pure logic ---------------------------------------------------------------------------------


def union_find_components(edges: Iterable[Edge]) -> dict[Hashable, Hashable]:
    """Reference answer and single-worker path: node -> smallest node of its component."""
    parent: dict[Any, Any] = {}

    def find(x: Any) -> Any:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for u, v in edges:
        parent.setdefault(u, u)
        parent.setdefault(v, v)
        ru, rv = find(u), find(v)
        if ru != rv:
            if rv < ru:
                ru, rv = rv, ru
            parent[rv] = ru  # the smaller root wins, so every root is its component's minimum
    return {node: find(node) for node in parent}


def large_star(node: Any, neighbours: Iterable[Any]) -> tuple[list[Edge], bool]:
    """Link every neighbour larger than ``node`` to the smallest of node and its neighbours.

    Returns the new edges and whether this changed the graph (node not its neighbourhood minimum
    while it has larger neighbours).
    """
    ns = set(neighbours)
    ns.discard(node)
    if not ns:
        return [], False
    m = min(min(ns), node)
    out = [(v, m) for v in ns if v > node]
    return out, bool(out) and m != node


def small_star(node: Any, neighbours: Iterable[Any]) -> tuple[list[Edge], bool]:
    """Link ``node`` and its smaller neighbours to the smallest of them (larger ones are dropped
    here and kept by their own small-star step). Changes the graph when there are two or more.
    """
    smaller = {v for v in neighbours if v < node}
    if not smaller:
        return [], False
    m = min(smaller)
    out = [(v, m) for v in smaller if v != m]
    out.append((node, m))
    return out, len(smaller) > 1


def star_label(node: Any, neighbours: Iterable[Any]) -> tuple[Any, bool]:
    """The node's label (smallest of itself and its neighbours) and whether it is in star form:
    a centre (no smaller neighbour) or a leaf (exactly one neighbour, a smaller one).
    """
    ns = set(neighbours)
    ns.discard(node)
    m = min(ns) if ns else node
    if m > node:
        return node, True
    return m, len(ns) == 1


# ---- Beam ---------------------------------------------------------------------------------------


def _both_directions(edge: Edge) -> Iterable[Edge]:
    u, v = edge
    if u != v:
        yield u, v
        yield v, u


class _StarStep(beam.DoFn):
    def __init__(self, namespace: str, kind: str, round_no: int) -> None:
        self.namespace, self.kind, self.round_no = namespace, kind, round_no

    def setup(self) -> None:
        self.counters = StageCounters(self.namespace)
        self.step = large_star if self.kind == "large" else small_star

    def process(self, element: tuple[Any, Iterable[Any]]) -> Iterable[Edge]:
        node, neighbours = element
        edges, changed = self.step(node, neighbours)
        if changed:
            self.counters.inc(f"cc_changed_round_{self.round_no:02d}")
        yield from edges


class _Label(beam.DoFn):
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def setup(self) -> None:
        self.counters = StageCounters(self.namespace)

    def process(self, element: tuple[Any, Iterable[Any]]) -> Iterable[tuple[Any, Any]]:
        node, neighbours = element
        label, star = star_label(node, neighbours)
        if not star:
            self.counters.inc("cc_unconverged_nodes")
        yield node, label


class _UnionFind(beam.DoFn):
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def setup(self) -> None:
        self.counters = StageCounters(self.namespace)

    def process(self, element: tuple[Any, Iterable[Edge]]) -> Iterable[tuple[Any, Any]]:
        _, edges = element
        self.counters.inc("cc_single_worker_runs")
        yield from union_find_components(edges).items()


class _Route(beam.DoFn):
    """Send every edge to the single-worker path or the distributed one, by the total edge count."""

    def __init__(self, namespace: str, limit: int) -> None:
        self.namespace, self.limit = namespace, limit

    def setup(self) -> None:
        self.counters = StageCounters(self.namespace)

    def process(self, edge: Edge, total: int) -> Iterable[Any]:
        self.counters.inc("cc_edges")
        if total <= self.limit:
            yield pvalue.TaggedOutput(SMALL_TAG, (0, edge))
        else:
            yield edge


class ConnectedComponents(beam.PTransform):
    """Edges -> ``(node, smallest node of its component)`` for every node in an edge.

    ``namespace`` is the stage whose counters this adds to (``corpusforge.<namespace>``).
    """

    def __init__(
        self,
        namespace: str,
        max_rounds: int = 10,
        single_worker_max_edges: int = 100_000,
        label: str | None = None,
    ) -> None:
        super().__init__(label)
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self.namespace = namespace
        self.max_rounds = max_rounds
        self.single_worker_max_edges = single_worker_max_edges

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        ns = self.namespace
        # without defaults: no edge, no count (the side input's default says 0), which saves the
        # fused stage that injects a default into an empty global combine
        total = (
            edges | "CountEdges" >> beam.CombineGlobally(beam.combiners.CountCombineFn()).without_defaults()
        )
        routed = edges | "Route" >> beam.ParDo(
            _Route(ns, self.single_worker_max_edges), beam.pvalue.AsSingleton(total, default_value=0)
        ).with_outputs(SMALL_TAG, main=LARGE_TAG)

        small = (
            routed[SMALL_TAG]
            | "GroupOnOneWorker" >> beam.GroupByKey()
            | "UnionFind" >> beam.ParDo(_UnionFind(ns))
        )

        current = routed[LARGE_TAG]
        for r in range(1, self.max_rounds + 1):
            for kind in ("large", "small"):
                current = (
                    current
                    | f"R{r:02d}{kind.title()}Adjacency" >> beam.FlatMap(_both_directions)
                    | f"R{r:02d}{kind.title()}Group" >> beam.GroupByKey()
                    | f"R{r:02d}{kind.title()}Star" >> beam.ParDo(_StarStep(ns, kind, r))
                )
        large = (
            current
            | "FinalAdjacency" >> beam.FlatMap(_both_directions)
            | "FinalGroup" >> beam.GroupByKey()
            | "Label" >> beam.ParDo(_Label(ns))
        )
        return (small, large) | "Labels" >> beam.Flatten()
