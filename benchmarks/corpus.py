"""Loading a benchmark corpus into Documents, shared by the per-stage benchmark scripts."""

from __future__ import annotations

import gzip
import json

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
