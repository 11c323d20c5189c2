"""Decontamination logic, without a pipeline: every matching mode on texts written for the test."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusforge.schemas.config import DecontaminationConfig
from corpusforge.schemas.records import Document
from corpusforge.transforms.decontam.index import benchmark_name, record_texts
from corpusforge.transforms.decontam.stage import Decontaminator
from corpusforge.transforms.decontam.text import benchmark_matching_form, ngram_hashes, word_hashes

LONG_Q = (
    "Question: A lighthouse keeper climbs 117 steps to the lamp room three times every night. "
    "How many steps does the keeper climb in a week?"
)
LONG_Q_WORDS = benchmark_matching_form(LONG_Q).split()
SHORT_Q = "Question: Which river flows through the old town of Quedlinburg?"  # 10 words
TINY = "Answer: the Bode"  # 3 words: too short to mean anything
FILLER = (
    "The harbour museum opens at ten and closes at six. Visitors can walk along the quay, "
    "see the restored fishing boats and buy smoked fish from the stall near the ferry. "
)


def write_jsonl(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.fixture
def bench(tmp_path: Path) -> str:
    return write_jsonl(
        tmp_path / "quiz.jsonl",
        [
            {"query": LONG_Q, "choices": ["819 steps", "2457 steps"], "gold": 1},
            {"query": SHORT_Q, "answer": TINY},
        ],
    )


def logic(*benchmarks, **kw) -> Decontaminator:
    d = Decontaminator(DecontaminationConfig(benchmarks=list(benchmarks), **kw))
    d.ready()
    return d


def doc(text: str, id: str = "d") -> Document:
    return Document(id=id, text=text)


def test_normalisation_is_case_punctuation_unicode_and_space_blind():
    assert benchmark_matching_form("Dik-Dik,  IT'S\u00a0ﬁne…\n\tÜber_all!") == "dikdik its fine überall"
    a = word_hashes("It's a DIK-DIK.  Really")
    b = word_hashes("its a dikdik really")
    assert np.array_equal(a, b) and a.size == 4
    assert not np.array_equal(word_hashes("its a dik dik"), b[:4])  # a split word is another word


def test_hashes_are_stable_64_bit_values():
    h = ngram_hashes("one two three four five", 3)
    assert h.dtype == np.uint64 and h.size == 3
    # fixed constants: the same text gives the same hash in every process and run
    assert np.array_equal(h, ngram_hashes("One, two; three four FIVE", 3))
    assert len(set(h.tolist())) == 3


def test_verbatim_item_rejects_and_names_benchmark_and_item(bench):
    d = logic(bench)
    v = d.check(doc(FILLER + LONG_Q + " " + FILLER))
    assert v.rejection is not None
    assert v.rejection.reason == "contamination:quiz" and v.rejection.stage == "decontamination"
    assert v.rejection.detail.startswith("quiz[0]: question a lighthouse keeper climbs 117 steps")
    assert v.doc.contamination == "quiz" and v.hits["quiz"] > 1


def test_case_and_punctuation_changes_still_match(bench):
    mangled = " ".join(LONG_Q_WORDS).upper()  # no punctuation at all, upper case
    assert logic(bench).check(doc(FILLER + mangled)).rejection is not None


def test_partial_span_of_thirteen_words_matches_and_twelve_does_not(bench):
    d = logic(bench)
    span13 = " ".join(LONG_Q_WORDS[4:17])
    span12 = " ".join(LONG_Q_WORDS[4:16])
    assert d.check(doc(FILLER + span13 + ". " + FILLER)).rejection is not None
    assert d.check(doc(FILLER + span12 + ". " + FILLER)).rejection is None


def test_clean_text_passes_untouched(bench):
    d = logic(bench)
    original = doc(FILLER * 3)
    v = d.check(original)
    assert v.rejection is None and v.doc is original and v.hits == {}


def test_short_item_matched_whole_only_as_a_word_run(bench):
    d = logic(bench)
    assert d.check(doc(FILLER + SHORT_Q.lower().replace("?", "") + " " + FILLER)).rejection is not None
    # the same words, not as one run (another word inside), do not match
    broken = SHORT_Q.replace("old town", "old walled town")
    assert d.check(doc(FILLER + broken + FILLER)).rejection is None
    # inside a longer word sequence it still matches (a run of words, not a whole line)
    assert d.check(doc("See also " + SHORT_Q + " and more")).rejection is not None


def test_items_below_min_words_are_ignored_and_counted(bench):
    d = logic(bench)
    assert d.check(doc(FILLER + TINY + " " + FILLER)).rejection is None
    stats = d.index.stats
    assert stats.texts_ignored_short == 3  # "Answer: the Bode" and the two choices
    assert stats.texts_whole == 1 and stats.texts_ngram == 1
    assert stats.counters()["index:texts_ignored_short"] == 3
    # with a lower minimum the short answer is matched whole
    low = logic(bench, min_words=3)
    assert low.check(doc(FILLER + "answer the bode " + FILLER)).rejection is not None


def test_boilerplate_ngrams_shared_by_many_items_do_not_count(tmp_path):
    template = (
        "Read the passage below carefully and then choose the single best answer from the options given"
    )
    records = [
        {"q": f"{template}. Item {i}: what is the colour of box number {i * 7 + 3}?"} for i in range(12)
    ]
    path = write_jsonl(tmp_path / "templ.jsonl", records)
    d = logic(path, max_item_frequency=10)
    assert d.index.stats.ngrams_boilerplate > 0
    assert d.check(doc(FILLER + template + ". " + FILLER)).rejection is None  # template alone
    assert d.check(doc(FILLER + records[5]["q"] + FILLER)).rejection is not None  # a real item
    # under the limit the template would have counted on its own
    assert (
        logic(path, max_item_frequency=20).check(doc(FILLER + template + ". " + FILLER)).rejection is not None
    )


def test_number_runs_never_match(tmp_path):
    path = write_jsonl(
        tmp_path / "code.jsonl", [{"test": "assert f([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]) == 0"}]
    )
    d = logic(path)
    assert d.check(doc("Table: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15")).rejection is None


def test_cut_removes_the_span_with_margin_and_keeps_the_rest(bench):
    d = logic(bench, action="cut", cut_margin=2)
    head = "Alpha beta gamma delta epsilon. " * 20
    tail = "Zeta eta theta iota kappa. " * 20
    v = d.check(doc(head + LONG_Q + " " + tail))
    assert v.rejection is None and v.cut
    assert "lighthouse" not in v.doc.text.lower() and v.doc.contamination == "quiz"
    words = benchmark_matching_form(v.doc.text).split()
    n_total = 100 + len(LONG_Q_WORDS) + 100
    assert len(words) == n_total - len(LONG_Q_WORDS) - 4  # the margin: two words on each side
    assert v.doc.text.startswith("Alpha beta") and v.doc.text.endswith("kappa.")


def test_cut_rejects_when_too_little_remains(bench):
    d = logic(bench, action="cut", cut_min_keep_frac=0.5)
    v = d.check(doc("Intro words here. " + LONG_Q))
    assert v.rejection is not None and v.rejection.reason == "contamination:quiz"


def test_formats_and_fields(tmp_path):
    text = "Passage: The bell tower of the village church was rebuilt in stone after the great storm of 1703."
    (tmp_path / "a.json").write_text(json.dumps({"data": [{"ctx": {"paragraphs": [text]}}]}))
    with open(tmp_path / "b.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["question", "other"])
        w.writeheader()
        w.writerow({"question": text, "other": "x"})
    pq.write_table(pa.table({"choices": [[text, "no"]]}), tmp_path / "c.parquet")
    for name in ("a.json", "b.csv", "c.parquet"):
        d = logic(str(tmp_path / name))
        v = d.check(doc(FILLER + text))
        assert v.rejection is not None and v.rejection.reason == f"contamination:{name.split('.')[0]}", name
    # an explicit entry: its name, and only its fields
    entry = {"name": "Bells", "path": str(tmp_path / "b.csv"), "fields": ["other"]}
    assert logic(entry).check(doc(FILLER + text)).rejection is None
    entry["fields"] = ["question"]
    assert logic(entry).check(doc(FILLER + text)).rejection.reason == "contamination:bells"


def test_record_texts_default_takes_every_string_including_lists():
    rec = {"q": "a", "choices": ["b", "c"], "meta": {"x": ["d"]}, "n": 3}
    assert record_texts(rec, None) == ["a", "b", "c", "d"]
    assert record_texts(rec, ("meta.x", "q")) == ["d", "a"]  # dotted paths reach nested fields
    assert benchmark_name("/x/GSM8K.test.jsonl.gz") == "gsm8k.test"


def test_index_is_built_in_setup_and_not_pickled(bench):
    d = Decontaminator(DecontaminationConfig(benchmarks=[bench]))
    assert d.index is None
    d.ready()
    clone = pickle.loads(pickle.dumps(d))
    assert clone.index is None and len(pickle.dumps(d)) < 2000
    clone.ready()
    assert clone.check(doc(LONG_Q)).rejection is not None


def test_no_benchmarks_passes_everything():
    d = logic()
    assert d.check(doc(LONG_Q)).rejection is None


def test_missing_benchmark_file_fails_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere"):
        logic(str(tmp_path / "nothere*.jsonl"))


def test_passage_repeated_for_many_questions_is_not_boilerplate(tmp_path):
    passage = (
        "The old ferry across the estuary ran every half hour in summer, carrying carts, cattle "
        "and the post, until the new bridge opened upstream in the spring of 1931."
    )
    records = [{"passage": passage, "question": f"Question number {i} about the ferry?"} for i in range(30)]
    d = logic(write_jsonl(tmp_path / "reading.jsonl", records), max_item_frequency=20)
    assert d.index.stats.ngrams_boilerplate == 0
    assert d.check(doc(FILLER + passage + FILLER)).rejection is not None


def test_cut_locates_words_in_non_ascii_text_with_punctuation_only_tokens(bench):
    d = logic(bench, action="cut", cut_margin=0)
    head = "Ökonomie – die Straße „am Fluss“ … café ½ naïve — ok. " * 12
    v = d.check(doc(head + " -- " + LONG_Q + " » ende « " + head))
    assert v.cut and v.rejection is None
    assert "lighthouse" not in v.doc.text and v.doc.text.count("Straße") == 24


def test_batched_word_hashing_equals_one_text_at_a_time():
    from corpusforge.transforms.decontam.text import word_hashes_many

    texts = ["Hello, World!", "", "-- ...", "Ünïcödé ﬁsh\u0301", "a\x1eb", "1 2 3 abc 45", "x"]
    batch = word_hashes_many(texts)
    per_text = [word_hashes(t) for t in texts]
    assert np.array_equal(batch.hashes, np.concatenate(per_text))
    assert batch.n_words.tolist() == [len(h) for h in per_text]
    assert batch.numeric.tolist()[-6:] == [True, True, True, False, True, False]


def test_batch_path_decides_like_one_at_a_time_and_never_across_documents(bench):
    d = logic(bench)
    half = len(LONG_Q_WORDS) // 2
    docs = [
        doc(FILLER + " ".join(LONG_Q_WORDS[:half]), "a"),  # the item split over two documents
        doc(" ".join(LONG_Q_WORDS[half : 2 * half]) + " " + FILLER, "b"),
        doc(FILLER + LONG_Q, "c"),
        doc("", "empty"),
        doc(FILLER + SHORT_Q, "short"),
    ]
    batch = d.check_batch(docs)
    assert [v.rejection is not None for v in batch] == [False, False, True, False, True]
    assert [v.rejection for v in batch] == [d.check(x).rejection for x in docs]


def test_jsonl_strings_may_hold_line_separators_and_names_are_lower_case(tmp_path):
    text = "The choir sang\u2028four carols by candlelight in the chapel before the midnight bells rang out"
    path = write_jsonl(tmp_path / "Carols.jsonl", [{"t": text}])
    v = logic(path).check(doc(FILLER + text.replace("\u2028", " ")))
    assert v.rejection.reason == "contamination:carols" and v.hits == {"carols": 1 + 16 - 13}
    entry = {"name": "MyBench", "path": path}
    assert logic(entry).check(doc(text)).hits == {"mybench": 4}
