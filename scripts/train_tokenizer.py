"""Train the project's default tokenizer: a byte-level BPE on the text in ``tokenizer_corpus/``.

    python -m corpusforge.pipelines.train_tokenizer [--corpus tokenizer_corpus] [--vocab-size 8192]
                                                   [--out package/assets/tokenizer.json] [--check]

``make tokenizer`` runs it. The result is reproducible byte for byte: the files are read in sorted
order, training runs on one thread (the BPE trainer's merge order is deterministic, but we do not
rely on thread scheduling), and the JSON is written the same way every time. ``--check`` retrains in
memory and fails if the committed file differs.
"""

from __future__ import annotations

import os

# One rayon thread: set before tokenizers starts its thread pool.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO / "tokenizer_corpus"
DEFAULT_OUT = REPO / "package" / "assets" / "tokenizer.json"
EOS = "<|endoftext|>"
PAD = "<|padding|>"
DEFAULT_VOCAB = 8192


def corpus_files(corpus: Path) -> list[Path]:
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".txt", ".md") and p.name != "README.md")
    if not files:
        raise SystemExit(f"no training text (*.txt, *.md) in {corpus}")
    return files


def _paragraphs(files: list[Path]) -> Iterator[str]:
    """Paragraph-sized pieces: whitespace runs inside a paragraph still get learned."""
    for path in files:
        for para in path.read_text(encoding="utf-8").split("\n\n"):
            if para.strip():
                yield para + "\n\n"


def train(corpus: Path = DEFAULT_CORPUS, vocab_size: int = DEFAULT_VOCAB) -> str:
    """The tokenizer.json text trained on ``corpus`` (GPT-2 style byte-level BPE, NFC, EOS id 0)."""
    tok = Tokenizer(models.BPE())
    # NFC: the pipeline's normalize stage writes NFC, and the same text must always give the same ids
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    files = corpus_files(corpus)
    tok.train_from_iterator(_paragraphs(files), trainer=trainer, length=None)
    return tok.to_str(pretty=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="fail if --out differs from a fresh training")
    args = ap.parse_args(argv)
    text = train(args.corpus, args.vocab_size)
    if args.check:
        same = args.out.is_file() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'reproduced' if same else 'DIFFERS from a fresh training'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    vocab = Tokenizer.from_str(text).get_vocab_size()
    print(f"wrote {args.out} (vocabulary {vocab}, {len(text.encode()) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
