"""Finding and loading a Hugging Face ``tokenizers`` tokenizer, offline, and its special tokens.

``tokenize.tokenizer`` is either unset (the project's own byte-level BPE shipped in
``package/assets/tokenizer.json``), a ``tokenizer.json`` path on any Beam filesystem, or a model
name (``EleutherAI/gpt-neox-20b``) whose files are already in the local Hugging Face cache. Nothing
is ever downloaded: a name that is not cached is an error that says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tokenizers import Tokenizer

from corpusforge.schemas.config import ConfigError

# Tried in order when the config names no token. They cover GPT-2/NeoX/Pythia, LLaMA 1/2/3,
# Mistral, T5 and Gemma style vocabularies.
EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "[SEP]", "<|im_end|>")
BOS_CANDIDATES = ("<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "[CLS]")


class TokenizerError(ConfigError):
    """The tokenizer cannot be found or lacks a special token the config asks for."""


def default_tokenizer_path() -> str:
    """The project's own tokenizer (trained by ``make tokenizer``), shipped as package data."""
    return str(resources.files("corpusforge").joinpath("assets", "tokenizer.json"))


def _hf_cache_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    dirs.append(hf_home / "hub")
    return dirs


def find_in_hf_cache(name: str) -> Path | None:
    """``tokenizer.json`` of model ``name`` in the local HF hub cache (the ``main`` ref first)."""
    folder = "models--" + name.replace("/", "--")
    for cache in _hf_cache_dirs():
        repo = cache / folder
        if not repo.is_dir():
            continue
        ref = repo / "refs" / "main"
        if ref.is_file():
            candidate = repo / "snapshots" / ref.read_text().strip() / "tokenizer.json"
            if candidate.is_file():
                return candidate
        found = sorted((repo / "snapshots").glob("*/tokenizer.json"))
        if found:
            return found[-1]
    return None


def read_tokenizer_json(spec: str | None) -> str:
    """The JSON text of the tokenizer ``spec`` names (see the module docstring)."""
    if not spec:
        return Path(default_tokenizer_path()).read_text(encoding="utf-8")
    if os.path.isdir(spec):  # a local model folder
        spec = os.path.join(spec, "tokenizer.json")
    looks_like_path = spec.endswith(".json") or "://" in spec or os.path.exists(spec)
    if looks_like_path:
        from apache_beam.io.filesystems import FileSystems

        try:
            with FileSystems.open(spec) as f:
                return f.read().decode("utf-8")
        except Exception as exc:  # Beam raises its own IOError flavours per filesystem
            raise TokenizerError(f"tokenize.tokenizer: cannot read {spec}: {exc}") from exc
    cached = find_in_hf_cache(spec)
    if cached is None:
        raise TokenizerError(
            f"tokenize.tokenizer: {spec!r} is neither a tokenizer.json path nor a model in the local "
            f"Hugging Face cache ({', '.join(str(d) for d in _hf_cache_dirs())}); corpusforge never downloads "
            "at run time: fetch it beforehand or give a tokenizer.json path"
        )
    return cached.read_text(encoding="utf-8")


def load_tokenizer(spec: str | None) -> Tokenizer:
    """Load the tokenizer; text that happens to spell a special token is encoded as plain text.

    Without ``encode_special_tokens`` a web page containing ``<|endoftext|>`` would smuggle a real
    EOS id into the middle of a training document.
    """
    tok = Tokenizer.from_str(read_tokenizer_json(spec))
    tok.encode_special_tokens = True
    return tok


def library_encoder(tok: Tokenizer) -> Callable[[list[str]], list[list[int]]]:
    """``texts -> ids`` through the library itself, without the tokenizer's own special tokens.

    ``encode_batch_fast`` skips the character offsets we never use (tokenizers >= 0.21).
    """
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return lambda texts: [e.ids for e in encode(texts, add_special_tokens=False)]


def resolve_special(tok: Tokenizer, explicit: str | None, candidates: tuple[str, ...], what: str) -> int:
    """The id of the ``what`` token (``eos``/``bos``): the configured one, else the first candidate
    among the tokenizer's special added tokens. A clear error when there is none."""
    if explicit is not None:
        token_id = tok.token_to_id(explicit)
        if token_id is None:
            raise TokenizerError(f"tokenize.{what}: token {explicit!r} is not in the tokenizer's vocabulary")
        return token_id
    specials = {t.content: i for i, t in tok.get_added_tokens_decoder().items() if t.special}
    for name in candidates:
        if name in specials:
            return specials[name]
    raise TokenizerError(
        f"tokenize.{what}: the tokenizer has no {what.upper()} special token among {list(candidates)} "
        f"(its special tokens: {sorted(specials) or 'none'}); name one with --set tokenize.{what}=TOKEN "
        f"or turn it off with --set tokenize.add_{what}=false"
    )


@dataclass(frozen=True)
class TokenizerInfo:
    """What the driver learns from the tokenizer before building the graph (the schema needs it)."""

    vocab_size: int
    bos_id: int | None
    eos_id: int | None


def inspect_tokenizer(
    spec: str | None, add_bos: bool, bos: str | None, add_eos: bool, eos: str | None
) -> TokenizerInfo:
    tok = load_tokenizer(spec)
    return TokenizerInfo(
        vocab_size=tok.get_vocab_size(with_added_tokens=True),
        bos_id=resolve_special(tok, bos, BOS_CANDIDATES, "bos") if add_bos else None,
        eos_id=resolve_special(tok, eos, EOS_CANDIDATES, "eos") if add_eos else None,
    )
