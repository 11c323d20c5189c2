"""Tokenization and training rows: tokenizer loading (loading), the per-worker word cache and its
optional C module (word_cache, _pretokenize.c), length buckets and packing (bucket), and the stage and
sequences sink (stage)."""

from corpusforge.transforms.tokenize.stage import Bucket, Tokenize, TokenizeAndBucket, WriteSequences

__all__ = ["Bucket", "Tokenize", "TokenizeAndBucket", "WriteSequences"]
