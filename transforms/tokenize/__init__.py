"""Tokenization and training rows: tokenizer loading (loading), the per-worker word cache (word_cache),
the pre-tokenizer rules it reproduces (pretokenize_rules) and its compiled encoder over the optional C
module (compiled_cache, _pretokenize.c), length buckets and packing (bucket), and the stage and
sequences sink (stage)."""

from corpusforge.transforms.tokenize.bucket_stage import Bucket
from corpusforge.transforms.tokenize.sequences_sink import WriteSequences
from corpusforge.transforms.tokenize.stage import Tokenize, TokenizeAndBucket

__all__ = ["Bucket", "Tokenize", "TokenizeAndBucket", "WriteSequences"]
