"""Build script for corpusforge's compiled modules; everything else is in pyproject.toml.

``transforms/tokenize/_pretokenize.c`` speeds up the tokenizer's word cache (GPT-2 pre-tokenization and
cache look-ups in one pass); ``transforms/language/_ngrams.c`` the naive_bayes language detector
(langdetect's n-gram walk and log-sum in one pass); ``transforms/bias/_bias_match.c`` the bias stage
(word count and lexicon-line search in one pass); ``transforms/prompt/_gate_search.c`` the prompt
stage's literal gates (memmem over a clause's literals); ``transforms/quality/_signals.c`` the quality
stage's signals (words, lines, paragraphs and n-grams in one pass over the code points);
``transforms/decontam/_grams.c`` decontamination (word hashes and the n-gram look-up in one loop per
document); ``transforms/toxicity/_terms.c`` the toxicity stage's term ids (the token regex and the
vocabulary look-up in one pass); ``transforms/pii/_gates.c`` the PII stage's digit-run and IBAN
gates (one walk each, no regex stop per digit); ``transforms/dedup/_minhash.c`` the MinHash
signature's min over the permutations (no shingles x permutations block). All are optional: where they cannot be compiled
(no C compiler on the machine) the package installs without them and the pure-Python paths give the
same answers, slower.
``CORPUSFORGE_PURE_PYTHON=1`` leaves it out on purpose (a wheel that installs anywhere).
"""

import os

from setuptools import Extension, setup

# Each compiled module's dotted name and its one C source, beside the Python module it speeds up.
COMPILED = (
    "transforms/tokenize/_pretokenize",
    "transforms/language/_ngrams",
    "transforms/bias/_bias_match",
    "transforms/prompt/_gate_search",
    "transforms/quality/_signals",
    "transforms/decontam/_grams",
    "transforms/toxicity/_terms",
    "transforms/pii/_gates",
    "transforms/dedup/_minhash",
)

extensions = []
if not os.environ.get("CORPUSFORGE_PURE_PYTHON"):
    extensions = [
        Extension("corpusforge." + path.replace("/", "."), sources=[path + ".c"], optional=True)
        for path in COMPILED
    ]

setup(ext_modules=extensions)
