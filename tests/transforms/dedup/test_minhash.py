"""Pure logic of deduplication: normal form, hashes, signatures, banding, bucket linking."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from corpusforge.schemas.config import DedupNearConfig, choose_bands
from corpusforge.transforms.dedup.minhash import (
    MinHasher,
    as_lean_minhash,
    band_keys,
    candidate_probability,
    comparison_text,
    dedup_comparison_form,
    estimated_jaccard,
    exact_hash,
    exact_jaccard,
    word_hashes,
    word_power_table,
)
from corpusforge.transforms.dedup.near import link_bucket, verification_fingerprint

VOCAB = [f"w{i}" for i in range(5000)]


def words(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return [rnd.choice(VOCAB) for _ in range(n)]


def shingle_jaccard(hasher: MinHasher, a: str, b: str) -> float:
    sa, sb = set(hasher.shingles(a).tolist()), set(hasher.shingles(b).tolist())
    return len(sa & sb) / len(sa | sb)


def test_normal_form_folds_case_width_and_whitespace_but_keeps_digits():
    assert dedup_comparison_form("  Hello\u00a0WORLD\n\tagain ") == "hello world again"
    assert dedup_comparison_form("ＡＢＣ １２３") == "abc 123"  # NFKC: full-width forms
    assert exact_hash("Hello  World") == exact_hash("hello world\n")
    assert exact_hash("row 1 2 3") != exact_hash("row 1 2 4")


def test_word_hashes_are_per_word_and_position_free():
    powers = word_power_table(16)  # small on purpose: the table must grow for longer texts
    h = word_hashes("alpha beta alpha " + "x" * 100, powers)
    assert len(h) == 4
    assert h[0] == h[2] and h[0] != h[1]
    assert len(set(word_hashes("a aa aaa b ab ba", powers).tolist())) == 6


def test_word_hashes_see_the_words_of_the_normal_form():
    powers = word_power_table()
    text = "A\u00a0b\u2028C\x85d\u3000E\r\n\tＦ  g\x1fh  "
    assert dedup_comparison_form(text) == "a b c d e f g h"
    expected = word_hashes(dedup_comparison_form(text), powers)
    assert np.array_equal(word_hashes(comparison_text(text), powers), expected)
    assert len(expected) == 8


def test_signature_is_deterministic_and_seed_dependent():
    text = " ".join(words(300, 1))
    a, b = MinHasher(seed=1), MinHasher(seed=1)
    assert np.array_equal(a.signature(text), b.signature(text))
    assert a.signature(text).dtype == np.uint32 and len(a.signature(text)) == 128
    assert not np.array_equal(a.signature(text), MinHasher(seed=2).signature(text))


@pytest.mark.parametrize("edits", [10, 40, 80])
def test_estimate_tracks_true_shingle_jaccard(edits):
    hasher = MinHasher(num_perm=256)
    base = words(600, 7)
    rnd = random.Random(edits)
    copy = list(base)
    for i in rnd.sample(range(len(copy)), edits):
        copy[i] = rnd.choice(VOCAB)
    a, b = " ".join(base), " ".join(copy)
    true = shingle_jaccard(hasher, a, b)
    est = estimated_jaccard(hasher.signature(a), hasher.signature(b))
    assert abs(est - true) < 0.08, (true, est)


def test_short_documents_get_distinct_signatures():
    hasher = MinHasher()
    one, two = hasher.signature("hello"), hasher.signature("goodbye now")
    assert estimated_jaccard(one, two) < 0.1
    assert estimated_jaccard(one, hasher.signature("HELLO")) == 1.0
    assert len(hasher.signature("")) == 128


def test_number_tables_differing_in_digits_are_not_duplicates():
    hasher = MinHasher()
    rnd = random.Random(3)

    def table() -> str:
        return "\n".join(" ".join(str(rnd.randint(0, 9999)) for _ in range(8)) for _ in range(40))

    a, b = table(), table()
    assert estimated_jaccard(hasher.signature(a), hasher.signature(b)) < 0.1


def test_datasketch_reads_our_signatures():
    hasher = MinHasher()
    a, b = " ".join(words(200, 1)), " ".join(words(200, 1)[:150] + words(50, 2))
    sa, sb = hasher.signature(a), hasher.signature(b)
    assert as_lean_minhash(sa).jaccard(as_lean_minhash(sb)) == pytest.approx(estimated_jaccard(sa, sb))


def test_bands_are_chosen_for_recall_at_the_threshold():
    bands, rows = choose_bands(0.7, 128)
    assert bands * rows <= 128
    # a pair at Jaccard 0.8 must nearly always become a candidate; datasketch's 0.8 choice does not
    assert candidate_probability(0.8, bands, rows) > 0.95
    assert candidate_probability(0.8, 9, 13) < 0.6
    assert candidate_probability(0.3, bands, rows) < 0.02
    keys = band_keys(np.arange(128, dtype=np.uint32), bands, rows)
    assert len(keys) == bands and len(set(keys)) == bands


def _bands_one_pair_at_a_time(threshold: float, num_perm: int) -> tuple[int, int]:
    """The banding search written out pair by pair (the weights' defaults, 0.2 and 0.8): what
    choose_bands computes for all pairs at once."""
    xs = np.linspace(0.0, 1.0, 2001)
    best = None
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            p = 1.0 - (1.0 - xs**rows) ** bands
            lo = xs <= threshold
            err = 0.2 * np.trapezoid(p[lo], xs[lo]) + 0.8 * np.trapezoid(1.0 - p[~lo], xs[~lo])
            if best is None or err < best[0] - 1e-12:
                best = (err, bands, rows)
    return best[1], best[2]


@pytest.mark.parametrize("num_perm", [16, 64, 128, 256])
def test_bands_for_all_pairs_at_once_are_the_pair_by_pair_choice(num_perm):
    for threshold in (0.3, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        choose_bands.cache_clear()
        assert choose_bands(threshold, num_perm) == _bands_one_pair_at_a_time(threshold, num_perm), threshold


def test_near_section_derives_banding_and_verification():
    cfg = DedupNearConfig()
    assert cfg.band_rows == choose_bands(cfg.lsh_threshold, cfg.num_perm) == (18, 7)
    assert cfg.verify_at == cfg.threshold == 0.8
    assert DedupNearConfig(lsh_threshold=0.5).band_rows != cfg.band_rows  # follows lsh_threshold
    assert DedupNearConfig(bands=16, rows=8).band_rows == (16, 8)  # set explicitly: used as set
    assert DedupNearConfig(threshold=0.9, verify_threshold=0.6).verify_at == 0.6
    with pytest.raises(ValueError):
        DedupNearConfig(bands=20, rows=10)


def test_link_bucket_links_to_representatives_not_all_pairs():
    sig = np.arange(100, dtype=np.uint32)
    other = sig + 1000
    near_sig = sig.copy()
    near_sig[:5] = 7777  # estimated Jaccard 0.95
    members = [(b"c", near_sig), (b"a", sig), (b"b", sig), (b"x", other), (b"y", other)]
    edges, comparisons, unlinked = link_bucket(members, 0.8, max_reps=8)
    assert sorted(edges) == [(b"a", b"b"), (b"a", b"c"), (b"x", b"y")]
    assert comparisons <= 2 * len(members) and unlinked == 0
    # with one representative slot, the second cluster cannot be linked and is counted as such
    edges, _, unlinked = link_bucket(members, 0.8, max_reps=1)
    assert sorted(edges) == [(b"a", b"b"), (b"a", b"c")] and unlinked == 2


def test_signature_equals_datasketch_for_the_same_shingles():
    from datasketch import MinHash

    hasher = MinHasher(num_perm=64, seed=5)
    shingles = hasher.shingles(" ".join(words(5000, 9)))  # longer than one permutation chunk
    reference = MinHash(num_perm=64, seed=5, hashfunc=lambda x: x, scheme="affine32")
    reference.update_batch([int(x) for x in shingles])
    assert np.array_equal(hasher.perms.signature(shingles), reference.hashvalues)


def test_exact_jaccard_treats_arrays_as_sets():
    assert exact_jaccard(np.array([1, 2, 2, 3], dtype=np.uint64), np.array([2, 3, 4], dtype=np.uint64)) == 0.5
    hasher = MinHasher()
    text = " ".join(words(100, 4))
    assert exact_jaccard(hasher.shingles(text), hasher.shingles(text.upper())) == 1.0


def test_verification_fingerprints_estimate_like_full_signatures():
    hasher = MinHasher()
    a, b = " ".join(words(300, 1)), " ".join(words(300, 1)[:240] + words(60, 3))
    sa, sb = hasher.signature(a), hasher.signature(b)
    fa = np.frombuffer(verification_fingerprint(sa), dtype=np.uint16)
    fb = np.frombuffer(verification_fingerprint(sb), dtype=np.uint16)
    assert len(verification_fingerprint(sa)) == 2 * 128
    assert abs(estimated_jaccard(fa, fb) - estimated_jaccard(sa, sb)) <= 2 / 128


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_permutations_are_datasketchs_without_importing_it():
    from datasketch import MinHash

    from corpusforge.transforms.dedup.minhash import SCHEME, Permutations

    for num_perm, seed in ((128, 1), (64, 5), (256, 12345), (1, 0)):
        ours = Permutations.create(num_perm, seed)
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
        assert np.array_equal(ours.a, a) and np.array_equal(ours.b, b)
        assert ours.a.dtype == ours.b.dtype == np.uint32 and (ours.a % 2 == 1).all()
    code = "import sys; from corpusforge.transforms.dedup.minhash import MinHasher; MinHasher(); print(sorted(m for m in ('datasketch', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
