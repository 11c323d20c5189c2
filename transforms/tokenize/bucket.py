"""Sequence-length bucketing: token ids of a document into training rows grouped by length.

A training loop pads every row of a batch to the batch's length; grouping rows by length (buckets
with ascending upper bounds) keeps that padding small. The pure logic here has no Beam in it:

- :func:`split_document`: a document goes whole into the smallest bucket that holds it; a longer
  one is cut into chunks of the largest bound, the last chunk bucketed by its own length.
- :class:`Packer`: ``tokenize.pack``: documents (each already ending in EOS) concatenated into rows
  of exactly the largest bound, as GPT-style pretraining does, with the document boundaries kept.

Every token goes into exactly one row, so the tokens in ``sequences/`` equal the sum of
``n_tokens`` of the kept documents.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from corpusforge.schemas.records import PackedRow, SequenceRow


def bucket_for(length: int, bounds: Sequence[int]) -> int:
    """The smallest upper bound >= ``length`` (``bounds`` ascending; ``length`` <= the largest)."""
    i = bisect.bisect_left(bounds, length)
    if i == len(bounds):
        raise ValueError(f"length {length} exceeds the largest bucket {bounds[-1]}")
    return bounds[i]


def split_document(doc_id: str, ids: Sequence[int], bounds: Sequence[int]) -> list[tuple[int, SequenceRow]]:
    """``(bucket, row)`` pairs of one document, in order (``chunk_index`` 0, 1, ...)."""
    largest = bounds[-1]
    out = []
    for chunk_index, start in enumerate(range(0, max(len(ids), 1), largest)):
        chunk = list(ids[start : start + largest])
        if not chunk:  # a document with no tokens at all (no EOS either) makes no row
            break
        out.append((bucket_for(len(chunk), bounds), SequenceRow(chunk, len(chunk), doc_id, chunk_index)))
    return out


class Packer:
    """Concatenates documents into rows of ``row_length`` tokens; :meth:`flush` emits the tail.

    Rows come out in the order documents went in. The tail (fewer than ``row_length`` tokens) is
    bucketed by its own length like the last chunk of a long document.
    """

    def __init__(self, row_length: int) -> None:
        self.row_length = row_length
        self._ids: list[int] = []
        self._doc_ids: list[str] = []
        self._starts: list[int] = []
        self._chunks: list[int] = []

    def add(self, doc_id: str, ids: Sequence[int]) -> Iterator[PackedRow]:
        """Append one document; yields every row it completes."""
        pos, chunk_index = 0, 0
        while pos < len(ids):
            room = self.row_length - len(self._ids)
            piece = ids[pos : pos + room]
            self._starts.append(len(self._ids))
            self._doc_ids.append(doc_id)
            self._chunks.append(chunk_index)
            self._ids.extend(piece)
            pos += len(piece)
            chunk_index += 1
            if len(self._ids) == self.row_length:
                yield self._take()

    def flush(self) -> Iterator[PackedRow]:
        if self._ids:
            yield self._take()

    def _take(self) -> PackedRow:
        row = PackedRow(self._ids, len(self._ids), self._doc_ids, self._starts, self._chunks)
        self._ids, self._doc_ids, self._starts, self._chunks = [], [], [], []
        return row


def padding(bucket: int, length: int) -> int:
    """Pad tokens a fixed-length batch of this bucket spends on a row of ``length`` tokens."""
    return bucket - length
