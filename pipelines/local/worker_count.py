"""The local runner's default number of worker processes, in one place and free of Beam imports.

The CLI decides whether to pre-start warm workers (:mod:`corpusforge.pipelines.local.warm`) before it
imports Beam, and the runner sets Beam's ``direct_num_workers`` afterwards; both must agree on the
default, or a run would start warm processes it never uses (or start cold ones it could have warmed).
"""

from __future__ import annotations

import os


def default_workers() -> int:
    """Workers when neither ``--workers`` nor ``--direct_num_workers`` is given: one per core.

    Beam's own default is one worker: its documented "0 means one per core" is never reached, since
    ``direct_num_workers`` defaults to 1.
    """
    return os.cpu_count() or 1
