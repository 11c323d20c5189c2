"""Decontamination against benchmarks: the benchmark n-gram index (index), the hashing of words and
n-grams both sides share (text), and the stage that rejects or cuts contaminated documents (stage)."""

from corpusforge.transforms.decontam.stage import Decontaminate

__all__ = ["Decontaminate"]
