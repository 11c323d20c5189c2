"""Deduplication: exact copies (exact), MinHash near duplicates (minhash signatures and LSH bands,
near for the stage), and the distributed connected components that turn pairs into clusters
(components)."""

from corpusforge.transforms.dedup.exact import DeduplicateExact
from corpusforge.transforms.dedup.near import DeduplicateNear

__all__ = ["DeduplicateExact", "DeduplicateNear"]
