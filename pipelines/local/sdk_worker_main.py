"""The local runner's SDK worker: Beam's own ``sdk_worker_main``, then an immediate process exit.

When Beam's worker has answered its last request it returns from ``main`` and the interpreter
finalizes: a full garbage collection over every module, cached bundle processor and object the run
left behind. That took 2 to 4 s per worker even for a trivial pipeline on the shared 2-core
machine (``py-spy dump --native`` shows ``gc_collect_main`` the whole time), and the runner waits
for the process to end before the run can finish. By then everything a worker owes the run is
done: its bundles' outputs are sent, every DoFn's ``teardown`` has run (Beam's harness shuts its
bundle processors down before returning) and its log handler is flushed and closed. So this
entry point runs Beam's ``main`` unchanged, flushes the standard streams and leaves with
``os._exit``; a worker that fails still raises (and exits non-zero) the usual way.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed stream: nothing left to lose
            pass
    os._exit(0)


if __name__ == "__main__":
    main()
