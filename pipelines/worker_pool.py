"""A Beam SDK worker pool for ``--environment_type=EXTERNAL``, listening on one address only.

    python -m corpusforge.pipelines.worker_pool --port 50000 [--host 127.0.0.1]
    corpusforge run ... --runner=FlinkRunner ... --environment_type=EXTERNAL --environment_config=127.0.0.1:50000

Why not Beam's ``apache_beam.runners.worker.worker_pool_main``: it listens on every interface
(``[::]:PORT``), and a worker pool runs whatever code a runner sends it, so here it binds to loopback
unless told otherwise. Each ``StartWorker`` call of the runner starts one SDK harness *process*
(Beam's servicer with ``use_process=True``): the work runs in parallel processes, not in threads of
one GIL-bound process as with LOOPBACK. The harnesses are stopped when the pool stops (SIGTERM or
SIGINT). Beam's servicer starts each harness as plain ``python -c ...`` (whatever ``python`` is first
on PATH): outside an activated virtualenv that interpreter lacks apache_beam, the harness dies at
import and the runner waits for it forever ("running: starting"). So the pool puts its own
interpreter's folder first on PATH: harnesses run in the pool's environment. It prints one line, ``worker pool listening at HOST:PORT``, once it accepts requests.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
import time


def serve(host: str = "127.0.0.1", port: int = 0):
    """Start the pool; returns (address, grpc server). Raises OSError when it cannot listen."""
    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc
    from apache_beam.runners.worker.worker_pool_main import (
        BeamFnExternalWorkerPoolServicer,
        kill_process_gracefully,
    )
    from apache_beam.utils import thread_pool_executor

    bin_dir = os.path.dirname(sys.executable)  # see the module docstring: harnesses run "python"
    if os.path.exists(os.path.join(bin_dir, "python")):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    server = grpc.server(
        thread_pool_executor.shared_unbounded_instance(),
        options=[("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)],
    )
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as e:  # newer grpc raises instead of returning 0
        raise OSError(f"worker pool cannot listen on {host}:{port}: {e}") from e
    if not bound:
        raise OSError(f"worker pool cannot listen on {host}:{port} (port taken?)")
    pool = BeamFnExternalWorkerPoolServicer(use_process=True)
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    server.start()

    def stop_harnesses() -> None:
        for proc in list(getattr(pool, "_worker_processes", {}).values()):
            kill_process_gracefully(proc)

    atexit.register(stop_harnesses)
    return f"{host}:{bound}", server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m corpusforge.pipelines.worker_pool",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    ap.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    args = ap.parse_args(argv)
    try:
        address, server = serve(args.host, args.port)
    except OSError as e:
        print(f"corpusforge worker pool: {e}", file=sys.stderr)
        return 1
    # SIGTERM exits through atexit, which stops the harness processes this pool started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"worker pool listening at {address}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
