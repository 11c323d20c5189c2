"""Connected components: the pure steps, and the Beam transform on generated graphs vs union-find."""

from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.transforms.dedup.components import (
    ConnectedComponents,
    large_star,
    small_star,
    star_label,
    union_find_components,
)
from tests.helpers import local_test_pipeline


def generated_graph(seed: int, nodes: int = 300, edges: int = 260) -> list[tuple[bytes, bytes]]:
    """Random sparse graph (many components, some long paths) plus one long chain; bytes node keys."""
    rnd = random.Random(seed)
    names = [f"{rnd.getrandbits(32):08x}-{i}".encode() for i in range(nodes)]
    out = [(rnd.choice(names), rnd.choice(names)) for _ in range(edges)]
    chain = [f"chain-{rnd.getrandbits(32):08x}".encode() for _ in range(60)]
    out += list(zip(chain, chain[1:], strict=False))
    return [(u, v) for u, v in out if u != v]


def bfs_components(edges):
    adj: dict = {}
    for u, v in edges:
        adj.setdefault(u, set()).add(v)
        adj.setdefault(v, set()).add(u)
    label = {}
    for start in adj:
        if start in label:
            continue
        seen, todo = {start}, [start]
        while todo:
            for w in adj[todo.pop()]:
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        root = min(seen)
        label.update(dict.fromkeys(seen, root))
    return label


def test_union_find_matches_bfs():
    edges = generated_graph(1)
    assert union_find_components(edges) == bfs_components(edges)


def test_star_steps():
    assert sorted(large_star(5, [2, 7, 9])[0]) == [(7, 2), (9, 2)]
    edges, changed = large_star(2, [7, 9])  # a star centre: same edges back, nothing changed
    assert sorted(edges) == [(7, 2), (9, 2)] and not changed
    edges, changed = small_star(9, [3, 5, 12])
    assert sorted(edges) == [(5, 3), (9, 3)] and changed
    assert star_label(7, [2]) == (2, True)
    assert star_label(2, [7, 9]) == (2, True)
    assert star_label(7, [2, 3]) == (2, False)


@pytest.mark.parametrize("single_worker_max_edges", [0, 10_000])
def test_transform_matches_reference(single_worker_max_edges):
    edges = generated_graph(2)
    expected = sorted(union_find_components(edges).items())
    p = local_test_pipeline()
    out = (
        p
        | "Edges" >> beam.Create(edges)
        | ConnectedComponents("cc_test", max_rounds=10, single_worker_max_edges=single_worker_max_edges)
    )
    assert_that(out, equal_to(expected))
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter())["counters"]
        if c.key.metric.namespace == "corpusforge.cc_test"
    }
    assert counters.get("cc_unconverged_nodes", 0) == 0
    assert counters["cc_edges"] == len(edges)
    assert ("cc_single_worker_runs" in counters) == (single_worker_max_edges > 0)


def test_too_few_rounds_never_merges_components():
    edges = generated_graph(3)
    reference = union_find_components(edges)
    p = local_test_pipeline()
    out = p | beam.Create(edges) | ConnectedComponents("cc_test", max_rounds=1, single_worker_max_edges=0)

    def check(labels):
        labels = dict(labels)
        assert set(labels) == set(reference)
        assert all(reference[n] == reference[root] for n, root in labels.items())
        assert any(labels[n] != reference[n] for n in labels)  # one round cannot finish the long chain

    assert_that(out, check)
    p.run().wait_until_finish()
