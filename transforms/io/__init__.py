"""Input and output: reading files (read), turning raw records into documents (validate), writing
documents/ and rejected/ (write), and the per-output observations stats.json reports (observe)."""

from corpusforge.transforms.io import lazy_filesystems, s3_clients
from corpusforge.transforms.io.read import ReadDocuments
from corpusforge.transforms.io.validate import Validate
from corpusforge.transforms.io.write import WriteDocuments, WriteRejected

__all__ = ["ReadDocuments", "Validate", "WriteDocuments", "WriteRejected"]

# every process that reads or writes through these transforms (the driver, each SDK worker) finds a
# filesystem a local run's lean import left out on its first path (lazy_filesystems), and shares one
# boto3 client per set of S3 options instead of building one per s3:// operation (s3_clients)
lazy_filesystems.install()
lazy_filesystems.on_load("s3", s3_clients.install)
