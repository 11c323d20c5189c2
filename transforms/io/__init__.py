"""Input and output: reading files (read), turning raw records into documents (validate), writing
documents/ and rejected/ (write), and the per-output observations stats.json reports (observe)."""

from corpusforge.transforms.io import s3_clients
from corpusforge.transforms.io.read import ReadDocuments
from corpusforge.transforms.io.validate import Validate
from corpusforge.transforms.io.write import WriteDocuments, WriteRejected

__all__ = ["ReadDocuments", "Validate", "WriteDocuments", "WriteRejected"]

# every process that reads or writes through these transforms (the driver, each SDK worker) shares
# one boto3 client per set of S3 options instead of building one per s3:// operation (s3_clients)
s3_clients.install()
