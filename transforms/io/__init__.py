"""Input and output: reading files (read), turning raw records into documents (validate), writing
documents/ and rejected/ (write), and the per-output observations stats.json reports (observe)."""

from corpusforge.transforms.io.read import ReadDocuments
from corpusforge.transforms.io.validate import Validate
from corpusforge.transforms.io.write import WriteDocuments, WriteRejected

__all__ = ["ReadDocuments", "Validate", "WriteDocuments", "WriteRejected"]
