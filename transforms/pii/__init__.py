"""PII scrubbing with presidio-analyzer, offline: pattern recognizers written for the project
(recognizers), the analyzer and replacement logic (engine), and the stage (stage)."""

from corpusforge.transforms.pii.stage import ScrubPII

__all__ = ["ScrubPII"]
