"""What the run report shows, as plain data: pure functions over stats.json and the output folder.

Nothing here draws or writes HTML, so every figure the report shows can be unit tested against
stats.json directly. Every section tolerates its stage being absent (the stage was disabled, or not
built yet): it returns empty data and the report says "stage not run".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from apache_beam.io.filesystems import FileSystems

# the check alone: transforms.pii.recognizers imports presidio (~1.4 CPU s), which the report never needs
from corpusforge.transforms.pii.checksums import luhn_ok

# --- PII masking of rejected examples ------------------------------------------------------------
# Rejected records may never have met the PII stage (it runs late), so examples are masked here with
# cheap patterns. Cards (Luhn-checked) and IBANs go first so that they are not reported as phones;
# digit runs that read as dates, year ranges or decimals are left alone (they are most of the digit
# runs of ordinary web text).
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b", re.IGNORECASE)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_PHONE = re.compile(r"(?<![\w-])\+?\(?\d[\d ().-]{6,}\d(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w-])")
_DATE = re.compile(
    r"\(?(?:\d{4}([./-])\d{1,2}\1\d{1,2}|\d{1,2}([./-])\d{1,2}\2\d{2,4})(?:[ T]\d{1,2}(?::\d{2})*)?"
)
_DECIMAL = re.compile(r"\d+[.,]\d{1,3}")
_YEAR = re.compile(r"1\d{3}|20\d{2}")


def _card(m: re.Match[str]) -> str:
    groups = re.split(r"[ -]", m.group(0))
    digits = "".join(groups)
    if (len(groups) == 1 or all(len(g) >= 3 for g in groups)) and luhn_ok(digits):
        return "<CARD>"
    return m.group(0)


def _phone(m: re.Match[str]) -> str:
    text = m.group(0)
    groups = re.findall(r"\d+", text.split("x")[0].split("ext")[0])
    digits = sum(len(g) for g in groups)
    if not 7 <= digits <= 15 or _DATE.fullmatch(text) or _DECIMAL.fullmatch(text):
        return text
    if all(_YEAR.fullmatch(g) for g in groups):  # 1994-2020, (1828-1893
        return text
    return "<PHONE>"


def scrub_pii(text: str) -> str:
    """Mask emails, IBANs, Luhn-valid card numbers, IPv4 addresses and phone-like digit runs."""
    text = _EMAIL.sub("<EMAIL>", text)
    text = _IBAN.sub("<IBAN>", text)
    text = _CARD.sub(_card, text)
    text = _IPV4.sub("<IP>", text)
    return _PHONE.sub(_phone, text)


def example_text(text: str | None, max_chars: int) -> str:
    """Masked, then cut to ``max_chars`` (masking first so that no half address survives the cut)."""
    if not text:
        return ""
    # Mask a little more than is shown, so a pattern straddling the cut is still recognised.
    head = scrub_pii(text[: max_chars + 64])
    return head if len(head) <= max_chars and len(text) <= max_chars else head[:max_chars].rstrip() + " …"


# --- histograms ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    lower: float  # -inf for the underflow bucket
    count: int

    @property
    def label(self) -> str:
        if self.lower == float("-inf"):
            return "< min"
        value = self.lower
        if value == int(value) and abs(value) >= 1000:
            return f"≥{int(value) // 1000}k" if value % 1000 == 0 else f"≥{int(value)}"
        return f"≥{value:g}"


def buckets(hist: dict[str, int]) -> list[Bucket]:
    """stats.json histogram (``{lower bound: count}``) as ordered buckets."""
    return sorted((Bucket(float(k), int(v)) for k, v in hist.items()), key=lambda b: b.lower)


def histogram(stats: dict[str, Any], stage: str, name: str) -> list[Bucket]:
    return buckets(stats.get("stages", {}).get(stage, {}).get("histograms", {}).get(name, {}))


def stage_ran(stats: dict[str, Any], stage: str) -> bool:
    return stage in stats.get("stage_order", []) or stage in stats.get("stages", {})


# --- funnel and reasons --------------------------------------------------------------------------
@dataclass(frozen=True)
class FunnelRow:
    stage: str
    docs_in: int
    docs_kept: int
    rejected: int
    chars_in: int
    chars_kept: int


def funnel(stats: dict[str, Any]) -> list[FunnelRow]:
    """Documents and characters into and out of each stage, in data-flow order.

    ``read`` counts records rather than documents and has no kept count, so it is left out; the
    funnel starts at ``validate`` (records parsed) and ends at the last stage that ran.
    """
    rows = []
    for name in stats.get("stage_order", []):
        s = stats.get("stages", {}).get(name)
        if not s or name == "read":
            continue
        rows.append(
            FunnelRow(
                name,
                s.get("in", 0),
                s.get("kept", 0),
                s.get("rejected", 0),
                s.get("chars_in", 0),
                s.get("chars_kept", 0),
            )
        )
    return rows


def rejections(stats: dict[str, Any]) -> list[tuple[str, int]]:
    """Every rejection reason of the run with its count, largest first (ties by name)."""
    counts: dict[str, int] = {}
    for s in stats.get("stages", {}).values():
        for reason, n in s.get("rejected_by_reason", {}).items():
            counts[reason] = counts.get(reason, 0) + int(n)
    return list(most_first(counts).items())


def most_first(counts: dict[str, int]) -> dict[str, int]:
    """``counts`` ordered by count, largest first, then by key (a stable order for the report)."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def prefixed_counters(stats: dict[str, Any], stages: Iterable[str], prefix: str) -> dict[str, int]:
    """Counters ``<prefix><key>`` of the given stages, summed by key (``hits:gsm8k`` → ``gsm8k``)."""
    out: dict[str, int] = {}
    for stage in stages:
        for key, n in stats.get("stages", {}).get(stage, {}).get("counters", {}).items():
            if key.startswith(prefix):
                k = key[len(prefix) :]
                out[k] = out.get(k, 0) + int(n)
    return most_first(out)


# --- sequence buckets ----------------------------------------------------------------------------
@dataclass(frozen=True)
class BucketRow:
    bucket: int
    rows: int
    tokens: int
    padding: int

    @property
    def waste(self) -> float:
        """Share of the bucket's token slots that are padding."""
        total = self.tokens + self.padding
        return self.padding / total if total else 0.0


_BUCKET_KEY = re.compile(r"^(rows|tokens|padding):bucket=(\d+)$")


def sequence_buckets(
    stats: dict[str, Any], stages: Iterable[str] = ("tokenize", "bucket")
) -> list[BucketRow]:
    found: dict[int, dict[str, int]] = {}
    for stage in stages:
        for key, n in stats.get("stages", {}).get(stage, {}).get("counters", {}).items():
            m = _BUCKET_KEY.match(key)
            if m:
                slot = found.setdefault(int(m.group(2)), {})
                slot[m.group(1)] = slot.get(m.group(1), 0) + int(n)
    return [
        BucketRow(b, v.get("rows", 0), v.get("tokens", 0), v.get("padding", 0))
        for b, v in sorted(found.items())
    ]


# --- thresholds from the config ------------------------------------------------------------------
def _leaves(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, (*path, str(k)))
    else:
        yield path, tree


def thresholds(section: dict[str, Any] | None, signal: str) -> list[tuple[str, float]]:
    """Config values that look like a threshold on ``signal`` (``family.name`` or ``name``).

    A key matches when it is the signal's name with an optional ``min_``/``max_`` prefix or
    ``_min``/``_max``/``_threshold`` suffix, inside the signal's family sub-section when it has one.
    """
    if not section:
        return []
    family, _, name = signal.rpartition(".")
    names = {name, f"min_{name}", f"max_{name}", f"{name}_min", f"{name}_max", f"{name}_threshold"}
    out = []
    for path, value in _leaves(section):
        if not path or path[-1] not in names or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if family and family not in path[:-1]:
            continue
        out.append((".".join(path), float(value)))
    return out


# --- rows read back from the output folder --------------------------------------------------------
def _parquet_files(folder: str) -> list[str]:
    try:
        matched = FileSystems.match([folder.rstrip("/") + "/**.parquet"])[0].metadata_list
    except Exception:
        return []
    return sorted(m.path for m in matched)


def _iter_row_groups(folder: str, columns: list[str]) -> Iterator[tuple[str, int, dict[str, list[Any]]]]:
    import pyarrow.parquet as pq

    for path in _parquet_files(folder):
        with FileSystems.open(path) as f:
            pf = pq.ParquetFile(f)
            present = [c for c in columns if c in pf.schema_arrow.names]
            for rg in range(pf.num_row_groups):
                yield path, rg, pf.read_row_group(rg, columns=present).to_pydict()


def kept_languages(output_dir: str) -> dict[str, int]:
    """Kept documents per ``lang`` (only the one column is read); empty when nothing was tagged."""
    counts: dict[str, int] = {}
    for _, _, cols in _iter_row_groups(f"{output_dir}/documents", ["lang"]):
        for lang in cols.get("lang", []):
            if lang is not None:
                counts[lang] = counts.get(lang, 0) + 1
    return most_first(counts)


@dataclass(frozen=True)
class Example:
    id: str
    reason: str
    detail: str
    duplicate_of: str
    text: str


def _rank(reason: str, record_id: str) -> str:
    """Stable pick order: the same examples come out whatever the sharding of rejected/."""
    return hashlib.sha1(f"{reason}\x00{record_id}".encode()).hexdigest()


def _example(cols: dict[str, list[Any]], row: int, max_chars: int) -> Example:
    def get(column: str) -> Any:
        values = cols.get(column)
        return values[row] if values else None

    return Example(
        id=str(get("id")),
        reason=get("reason") or "",
        detail=example_text(get("detail"), 200),
        duplicate_of=get("duplicate_of") or "",
        text=example_text(get("text"), max_chars),
    )


def _pick_examples(
    folder: str, group_by: str | None, per_group: int, max_chars: int
) -> dict[str, list[Example]]:
    """A few rows of ``folder`` per value of ``group_by`` (one group "" without it), masked and cut.

    Two passes so that only a handful of texts are ever read: the first reads the small ``id`` (and
    grouping) columns and picks, per group, the ``per_group`` rows with the smallest stable hash;
    the second reads the text of the row groups that hold a pick, and nothing else.
    """
    if per_group <= 0:
        return {}
    picks: dict[str, list[tuple[str, str, int, int]]] = {}  # group -> [(rank, path, rg, row)]
    key_columns = ["id", group_by] if group_by else ["id"]
    for path, rg, cols in _iter_row_groups(folder, key_columns):
        ids = cols.get("id", [])
        groups = cols.get(group_by, []) if group_by else [""] * len(ids)
        for row, (rid, group) in enumerate(zip(ids, groups, strict=False)):
            slot = picks.setdefault(group or "", [])
            slot.append((_rank(group or "", str(rid)), path, rg, row))
            if len(slot) > 4 * per_group:  # keep memory bounded on huge runs
                slot.sort()
                del slot[per_group:]
    wanted: dict[tuple[str, int], set[int]] = {}
    for slot in picks.values():
        slot.sort()
        del slot[per_group:]
        for _, path, rg, row in slot:
            wanted.setdefault((path, rg), set()).add(row)
    rows: dict[tuple[str, int, int], Example] = {}
    if wanted:
        import pyarrow.parquet as pq

        cols_wanted = ["id", "reason", "detail", "duplicate_of", "text"]
        for path in sorted({p for p, _ in wanted}):
            with FileSystems.open(path) as f:
                pf = pq.ParquetFile(f)
                present = [c for c in cols_wanted if c in pf.schema_arrow.names]
                for (p, rg), row_ids in wanted.items():
                    if p != path:
                        continue
                    # only the picked rows become Python values: converting a whole row group's
                    # texts (most of a rejected shard) was most of the report's time. A zero-copy
                    # slice per row, not Table.take: that imports pyarrow.compute, and pandas with it
                    group = pf.read_row_group(rg, columns=present)
                    for r in sorted(row_ids):
                        rows[(path, rg, r)] = _example(group.slice(r, 1).to_pydict(), 0, max_chars)
    return {
        group: [rows[(p, rg, r)] for _, p, rg, r in slot if (p, rg, r) in rows]
        for group, slot in sorted(picks.items())
    }


def rejected_examples(output_dir: str, per_reason: int, max_chars: int) -> dict[str, list[Example]]:
    """A few rejected records per reason, masked and truncated (see :func:`_pick_examples`)."""
    return _pick_examples(f"{output_dir}/rejected", "reason", per_reason, max_chars)


def kept_examples(output_dir: str, count: int, max_chars: int) -> list[Example]:
    """A few kept documents, so a user sees what the training data looks like."""
    return _pick_examples(f"{output_dir}/documents", None, count, max_chars).get("", [])


def pii_examples(
    output_dir: str, placeholder: str, per_type: int, context_chars: int = 60
) -> dict[str, list[str]]:
    """A few masked passages per PII type from ``documents/``: the text around a placeholder.

    Shows what the scrubber replaced without showing what it replaced (the text already holds only
    placeholders). Documents are picked by a stable hash of (type, id), so the same examples come
    out whatever the sharding; only the row groups holding a pick have their text read.
    """
    if per_type <= 0:
        return {}
    picks: dict[str, list[tuple[str, str, int, int]]] = {}
    for path, rg, cols in _iter_row_groups(f"{output_dir}/documents", ["id", "pii_counts"]):
        for row, (rid, counts) in enumerate(
            zip(cols.get("id", []), cols.get("pii_counts", []), strict=False)
        ):
            items = counts.items() if isinstance(counts, dict) else (counts or [])
            for entity, n in items:
                if n:
                    slot = picks.setdefault(entity, [])
                    slot.append((_rank(entity, str(rid)), path, rg, row))
                    if len(slot) > 4 * per_type:
                        slot.sort()
                        del slot[per_type:]
    wanted: dict[tuple[str, int], set[int]] = {}
    for slot in picks.values():
        slot.sort()
        del slot[per_type:]
        for _, path, rg, row in slot:
            wanted.setdefault((path, rg), set()).add(row)
    texts: dict[tuple[str, int, int], str] = {}
    for (path, rg), rows in sorted(wanted.items()):
        import pyarrow.parquet as pq

        with FileSystems.open(path) as f:
            column = pq.ParquetFile(f).read_row_group(rg, columns=["text"]).column("text")
        for r in rows:  # the picked texts only become Python strings, not the row group's
            texts[(path, rg, r)] = column[r].as_py() or ""
    out: dict[str, list[str]] = {}
    for entity, slot in sorted(picks.items()):
        mark = placeholder.format(entity=entity)
        for _, path, rg, row in slot:
            text = texts.get((path, rg, row), "")
            i = text.find(mark)
            if i < 0:  # replaced in the url or metadata only
                continue
            lo, hi = max(0, i - context_chars), min(len(text), i + len(mark) + context_chars)
            snippet = " ".join(text[lo:hi].split())
            out.setdefault(entity, []).append(("…" if lo else "") + snippet + ("…" if hi < len(text) else ""))
    return out
