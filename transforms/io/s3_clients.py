"""One boto3 S3 client per process and set of S3 options for Beam's ``s3://`` filesystem.

Beam's ``S3FileSystem`` builds a new ``S3IO`` for every operation (each ``exists``, ``size``,
listing, open, copy and delete), and each ``S3IO`` builds a new ``boto3_client.Client``, which
makes a new ``boto3.session.Session`` and a new botocore client from it: ~130 ms of CPU each on
this project's 2-core machine, mostly botocore reloading and parsing its JSON data files. A run of
the sample on s3:// spent ~55 CPU s against ~12 on local files, and a run at scale pays it per file
opened and per shard written. A botocore client is thread-safe and holds nothing of one request
but its connection pool, so one per process serves every operation.

Why a replaced class and not a filesystem of our own: Beam picks a filesystem for a path among
*all* ``FileSystem`` subclasses with that scheme and refuses a path that two of them claim
("Found more than one filesystem"), so a subclass of ``S3FileSystem`` for ``s3`` makes every
``s3://`` path fail. ``S3IO`` looks ``boto3_client.Client`` up when it is called, so
:func:`install` puts :class:`SharedS3Client`, a subclass, there: it takes the same options and
keeps Beam's per-object state (the open download stream, which each ``S3IO`` still has to itself,
so two files read at once do not share a stream); only the botocore client underneath is shared.
The cache is keyed by the S3 options (two endpoints or two sets of keys get two clients) and by the
process id (a forked child builds its own: connection pools must not cross a fork). Without
boto3 (the ``aws`` extra) there is nothing to replace and :func:`install` does nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

_MARK = "_corpusforge_shared_client"
_LOCK = threading.Lock()
_CLIENTS: dict[tuple, Any] = {}


def s3_settings(options: Any) -> tuple:
    """The client settings Beam's ``boto3_client.Client`` reads from ``options`` (pipeline options
    or a plain dict), in one hashable tuple: region, API version, SSL, verify, endpoint, keys."""
    from apache_beam.options.pipeline_options import PipelineOptions, S3Options

    if isinstance(options, PipelineOptions):
        s3 = options.view_as(S3Options)
        values: Mapping[str, Any] = {
            name: getattr(s3, name)
            for name in (
                "s3_access_key_id",
                "s3_secret_access_key",
                "s3_session_token",
                "s3_endpoint_url",
                "s3_disable_ssl",
                "s3_region_name",
                "s3_api_version",
                "s3_verify",
            )
        }
    else:
        values = options
    return (
        values.get("s3_region_name"),
        values.get("s3_api_version"),
        not values.get("s3_disable_ssl", False),
        values.get("s3_verify"),
        values.get("s3_endpoint_url"),
        values.get("s3_access_key_id"),
        values.get("s3_secret_access_key"),
        values.get("s3_session_token"),
    )


def shared_boto3_client(settings: tuple) -> Any:
    """This process's botocore S3 client for ``settings`` (see :func:`s3_settings`), made on first
    use exactly as Beam makes one (a fresh session, the same arguments), then reused."""
    key = (os.getpid(), settings)
    client = _CLIENTS.get(key)
    if client is None:
        with _LOCK:  # a boto3 session is not thread-safe: one thread builds the client
            client = _CLIENTS.get(key)
            if client is None:
                import boto3

                region, api_version, use_ssl, verify, endpoint, key_id, secret, token = settings
                client = boto3.session.Session().client(
                    service_name="s3",
                    region_name=region,
                    api_version=api_version,
                    use_ssl=use_ssl,
                    verify=verify,
                    endpoint_url=endpoint,
                    aws_access_key_id=key_id,
                    aws_secret_access_key=secret,
                    aws_session_token=token,
                )
                _CLIENTS[key] = client
    return client


def install() -> bool:
    """Makes Beam's S3 I/O in this process share its boto3 clients (idempotent). False when Beam's
    boto3 client cannot be imported (boto3 not installed): s3:// then fails as Beam makes it fail."""
    try:
        from apache_beam.io.aws.clients.s3 import boto3_client
    except ImportError:
        return False
    if boto3_client.boto3 is None:  # Beam's module imports without boto3; its Client then asserts
        return False
    if getattr(boto3_client.Client, _MARK, False):
        return True
    beam_client = boto3_client.Client

    class SharedS3Client(beam_client):
        """Beam's S3 client wrapper with the botocore client taken from the process's cache."""

        def __init__(self, options: Any) -> None:
            # Beam's __init__ less the session and client it would build; the download state is
            # per wrapper, as in Beam (one S3IO, one wrapper)
            self.client = shared_boto3_client(s3_settings(options))
            self._download_request = None
            self._download_stream = None
            self._download_pos = 0

    setattr(SharedS3Client, _MARK, True)
    SharedS3Client.__qualname__ = SharedS3Client.__name__ = "SharedS3Client"
    boto3_client.Client = SharedS3Client
    return True
