"""Dedup against earlier releases: the index's rows and parameters, the checks made at start-up, and
the stage as a Beam transform (exact and near copies named by release and id, earliest release first,
previous before in-run)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.schemas import arrow
from corpusforge.schemas.records import Document
from corpusforge.transforms.dedup.exact import DeduplicateExact
from corpusforge.transforms.dedup.index import (
    DedupIndexError,
    IndexParams,
    IndexRowMaker,
    NearParams,
    index_folders,
    resolve_previous,
    write_params,
)
from corpusforge.transforms.dedup.previous import DeduplicatePrevious, best_matches
from tests.helpers import local_test_pipeline

PARAMS = NearParams.resolve()
WORDS = [f"w{i}" for i in range(3000)]


def text(seed: int, n: int = 200) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def edited(t: str, every: int = 100) -> str:
    """Every ``every``-th word replaced: 5-gram Jaccard about 0.9 at every=100."""
    words = t.split()
    return " ".join("changed" if i % every == 50 else w for i, w in enumerate(words))


def write_index(folder: Path, release: str, docs: list[Document], params: NearParams = PARAMS) -> Path:
    maker = IndexRowMaker(params, release)
    maker.setup()
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist([maker.row(d) for d in docs], schema=arrow.index_schema())
    pq.write_table(table, folder / "part-00000-of-00001.parquet")
    write_params(str(folder), IndexParams.of(params), release, "test")
    return folder


def outcome(kept, rejected):
    return (
        kept | "KeptIds" >> beam.Map(lambda d: d.id),
        rejected
        | "RejectedRows" >> beam.Map(lambda r: (r.doc.id, r.rejection.reason, r.rejection.duplicate_of)),
    )


def test_index_row_holds_what_a_later_run_compares():
    maker = IndexRowMaker(PARAMS, "r1")
    maker.setup()
    row = maker.row(Document(id="a", text=text(1)))
    assert row["id"] == "a" and row["release"] == "r1"
    assert len(row["exact_hash"]) == 16
    assert len(row["band_keys"]) == PARAMS.bands
    assert len(row["signature"]) == 4 * PARAMS.num_perm
    # the same text in another spacing and case has the same exact hash
    assert maker.row(Document(id="b", text=text(1).upper() + "  "))["exact_hash"] == row["exact_hash"]


def test_mismatched_parameters_are_named():
    ours = IndexParams.of(PARAMS)
    theirs = IndexParams.of(NearParams.resolve(num_perm=64))
    wrong = ours.mismatches(theirs)
    assert any(w.startswith("num_perm: index has 64") for w in wrong)
    assert ours.mismatches(theirs, exact_only=True) == []  # exact dedup only needs the normal form


def test_an_index_built_with_other_minhash_parameters_is_refused(tmp_path):
    write_index(
        tmp_path / "old" / "dedup_index",
        "old",
        [Document(id="a", text=text(1))],
        NearParams.resolve(num_perm=64, seed=7),
    )
    with pytest.raises(DedupIndexError) as err:
        resolve_previous([str(tmp_path / "old")], IndexParams.of(PARAMS))
    message = str(err.value)
    assert message.startswith("dedup.previous[0]:")
    assert "num_perm: index has 64" in message and "seed: index has 7" in message


def test_missing_or_unreadable_indexes_are_refused(tmp_path):
    ours = IndexParams.of(PARAMS)
    with pytest.raises(DedupIndexError, match="no such folder"):
        resolve_previous([str(tmp_path / "nowhere")], ours)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DedupIndexError, match="holds no dedup index"):
        resolve_previous([str(tmp_path / "empty")], ours)
    folder = write_index(tmp_path / "idx", "idx", [Document(id="a", text=text(1))])
    (folder / "part-00001-of-00002.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DedupIndexError, match="unreadable index shard"):
        resolve_previous([str(folder)], ours)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "_params.json").write_text("{not json")
    with pytest.raises(DedupIndexError, match="not a corpusforge index description"):
        resolve_previous([str(bad)], ours)


def test_an_incremental_index_is_read_part_by_part_in_order(tmp_path):
    for part in (1, 0):
        write_index(
            tmp_path / "run" / "dedup_index" / f"part={part:05d}",
            "run",
            [Document(id=f"p{part}", text=text(part))],
        )
    folders = index_folders(str(tmp_path / "run"))
    assert [Path(f).name for f in folders] == ["part=00000", "part=00001"]


def test_best_match_is_the_earliest_verified_one():
    fp_a, fp_b = b"\x01\x00" * 4, b"\x02\x00" * 4
    old = [((1, "r2", "y"), fp_a), ((0, "r1", "x"), fp_a), ((0, "r1", "z"), fp_b)]
    matches, comparisons = best_matches([(b"n1", fp_a), (b"n2", b"\x03\x00" * 4)], old, 0.8)
    assert matches == [(b"n1", (0, "r1", "x"))]
    assert comparisons == 6


def test_copies_of_indexed_documents_are_rejected_naming_release_and_id(tmp_path):
    t1, t2, t3 = text(1), text(2), text(3)
    r1 = write_index(tmp_path / "r1", "r1", [Document(id="a", text=t1), Document(id="b", text=t2)])
    r2 = write_index(tmp_path / "r2", "r2", [Document(id="c", text=t1), Document(id="d", text=t3)])
    sources = resolve_previous([str(r1), str(r2)], IndexParams.of(PARAMS))
    new = [
        Document(id="exact", text=t1.upper()),  # in r1 and r2: the earlier release is named
        Document(id="near", text=edited(t2)),
        Document(id="near3", text=edited(t3)),  # only in r2
        Document(id="new1", text=text(4)),
        Document(id="new2", text=text(4)),  # a copy of a new document only: left to dedup_exact
    ]
    with local_test_pipeline() as p:
        kept, rejected = p | beam.Create(new) | DeduplicatePrevious(sources, PARAMS)
        kept_ids, rejected_rows = outcome(kept, rejected)
        assert_that(kept_ids, equal_to(["new1", "new2"]), label="kept")
        assert_that(
            rejected_rows,
            equal_to(
                [
                    ("exact", "dedup:exact_previous", "r1:a"),
                    ("near", "dedup:near_previous", "r1:b"),
                    ("near3", "dedup:near_previous", "r2:d"),
                ]
            ),
            label="rejected",
        )


@pytest.mark.parametrize("exact,near", [(True, False), (False, True)])
def test_one_kind_alone(tmp_path, exact, near):
    t1, t2 = text(1), text(2)
    r1 = write_index(tmp_path / "r1", "r1", [Document(id="a", text=t1), Document(id="b", text=t2)])
    sources = resolve_previous([str(r1)], IndexParams.of(PARAMS), exact_only=not near)
    new = [
        Document(id="exact", text=t1),
        Document(id="near", text=edited(t2)),
        Document(id="new", text=text(5)),
    ]
    want_kept = ["new"] + ([] if near else ["near"])
    reason = "dedup:exact_previous" if exact else "dedup:near_previous"  # near alone catches the copy too
    want_rejected = [("exact", reason, "r1:a")] + ([("near", "dedup:near_previous", "r1:b")] if near else [])
    with local_test_pipeline() as p:
        kept, rejected = p | beam.Create(new) | DeduplicatePrevious(sources, PARAMS, exact=exact, near=near)
        kept_ids, rejected_rows = outcome(kept, rejected)
        assert_that(kept_ids, equal_to(want_kept), label="kept")
        assert_that(rejected_rows, equal_to(want_rejected), label="rejected")


def test_previous_comes_before_in_run_dedup(tmp_path):
    """Two new copies of an indexed page: both are *_previous, neither is a dedup:exact of the other."""
    t1 = text(1)
    r1 = write_index(tmp_path / "r1", "r1", [Document(id="a", text=t1)])
    sources = resolve_previous([str(r1)], IndexParams.of(PARAMS))
    with local_test_pipeline() as p:
        kept, rejected_prev = (
            p
            | beam.Create([Document(id="x", text=t1), Document(id="y", text=t1)])
            | DeduplicatePrevious(sources, PARAMS)
        )
        kept, rejected_exact = kept | DeduplicateExact()
        rows = (
            (rejected_prev, rejected_exact)
            | beam.Flatten()
            | beam.Map(lambda r: (r.doc.id, r.rejection.reason, r.rejection.duplicate_of))
        )
        assert_that(
            rows, equal_to([("x", "dedup:exact_previous", "r1:a"), ("y", "dedup:exact_previous", "r1:a")])
        )


def test_params_file_names_release_and_parameters(tmp_path):
    folder = write_index(tmp_path / "i", "rel", [Document(id="a", text=text(1))])
    doc = json.loads((folder / "_params.json").read_text())
    assert doc["release"] == "rel"
    assert doc["params"]["num_perm"] == PARAMS.num_perm and doc["params"]["bands"] == PARAMS.bands


def _write_jsonl(path: Path, docs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in docs))
    return path


@pytest.mark.slow
def test_rejections_against_an_earlier_release_are_the_same_rows_on_one_and_two_workers(tmp_path):
    """Deterministic on any worker count: the second release's *_previous rejections (and everything
    else it writes) are identical rows whether one worker or two split its input."""
    from corpusforge.pipelines.cli import run
    from corpusforge.schemas.config import load_config
    from tests.helpers import IN_PROCESS, stages_off, table_rows

    base = [(f"old{i:03d}", text(100 + i)) for i in range(60)]
    first = tmp_path / "first"
    first.mkdir()
    _write_jsonl(first / "old.jsonl", base)
    # dedup (previous and in-run) is under test: every other stage off
    fast = [flag.removeprefix("--set=") for flag in stages_off("normalize", "dedup.exact", "dedup.near")]
    # the earlier release only provides the index: made in this process (no SDK worker start-up)
    run(
        [str(first)], str(tmp_path / "r1"), load_config(overrides=fast), [IN_PROCESS], workers=1, release="r1"
    )

    second = tmp_path / "second"
    second.mkdir()
    # two files, so that two workers split the input: exact copies (case changed), near copies,
    # new pages, copies among the new pages, and new copies of one old page (previous wins)
    _write_jsonl(
        second / "a.jsonl",
        [(f"exact{i:02d}", base[i][1].upper()) for i in range(0, 20)]
        + [(f"new{i:02d}", text(500 + i)) for i in range(20)]
        + [("twin_a", base[30][1])],
    )
    _write_jsonl(
        second / "b.jsonl",
        [(f"near{i:02d}", edited(base[i][1])) for i in range(20, 40)]
        + [(f"newcopy{i:02d}", text(500 + i)) for i in range(5)]
        + [("twin_b", base[30][1])],
    )
    outputs = {}
    for workers in (1, 2):
        cfg = load_config(overrides=[*fast, f"dedup.previous=[{tmp_path / 'r1'}]"])
        out = tmp_path / f"r2_w{workers}"
        # one worker in this process (Beam's in-memory runner), two in worker processes: two layouts
        beam_args = [IN_PROCESS] if workers == 1 else []
        stats = run([str(second)], str(out), cfg, beam_args, workers=workers, release="r2")
        assert stats["conservation_ok"]
        outputs[workers] = (table_rows(out / "rejected"), table_rows(out / "documents"))
    rejected = outputs[1][0]
    previous = [
        (r["id"], r["reason"], r["duplicate_of"]) for r in rejected if r["reason"].endswith("_previous")
    ]
    assert sorted(i for i, reason, _ in previous if reason == "dedup:exact_previous") == sorted(
        [f"exact{i:02d}" for i in range(20)] + ["twin_a", "twin_b"]
    )
    assert sorted(i for i, reason, _ in previous if reason == "dedup:near_previous") == [
        f"near{i:02d}" for i in range(20, 40)
    ]
    assert all(ref.startswith("r1:old") for _, _, ref in previous)
    assert outputs[1] == outputs[2]  # full rows: reasons, duplicate_of, texts, duplicate counts
