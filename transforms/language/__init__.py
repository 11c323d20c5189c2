"""Language identification with langdetect's packaged profiles (offline, seeded, deterministic)."""

from corpusforge.transforms.language.stage import IdentifyLanguage

__all__ = ["IdentifyLanguage"]
