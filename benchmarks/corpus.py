"""Loading a benchmark corpus (Documents, or texts as the tokenizer sees them), shared by the
per-stage benchmark scripts."""

from __future__ import annotations

import gzip
import json
import unicodedata

from corpusforge.schemas.records import Document


def read_docs(path: str, limit: int) -> list[Document]:
    """The first ``limit`` records of a JSONL(.gz) file as Documents (missing text: empty)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    docs = []
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= limit:
                break
            record = json.loads(line)
            docs.append(Document(id=str(record.get("id", i)), text=record.get("text") or ""))
    return docs


def read_texts(path, limit: int) -> list[str]:
    """The first ``limit`` texts of a JSONL(.gz) file, NFC-normalised as the normalize stage hands
    documents to the tokenizer."""
    opener = gzip.open if str(path).endswith(".gz") else open
    texts = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            texts.append(unicodedata.normalize("NFC", json.loads(line)["text"]))
            if len(texts) >= limit:
                break
    return texts
