"""The FnApiRunner's side of warm workers (``warm.py``): an environment whose workers come from a
:class:`~corpusforge.pipelines.local.warm.WarmPool`.

The hook is the graph's environment, not a patch of Beam: :func:`use_warm_workers` gives the local
runner's own subprocess environment (Beam's ``beam:env:harness_subprocess_python:v1`` running
``sdk_worker_main``) a corpusforge URN that names the pool, and :class:`WarmWorkerHandler`, registered
for that URN, is Beam's subprocess worker handler except for where the process comes from. It hands a
warm process the environment Beam's ``SubprocessSdkWorker`` would give a new one (control and logging
addresses, pipeline options, worker id; its own logging server), and waits for it the same way: an
exit status other than 0 raises Beam's ``Worker subprocess exited with return code N``, which
``interrupts.watch_workers`` reads. With no live warm process left, Beam's own worker starts instead.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from typing import Any

import grpc
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_fn_api_pb2_grpc, endpoints_pb2
from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.utils import thread_pool_executor
from google.protobuf import json_format, text_format

from corpusforge.pipelines.local.warm import WarmPool

WARM_URN = "corpusforge:env:warm_subprocess_python:v1"
_POOLS: dict[str, WarmPool] = {}
_ids = itertools.count()


def use_warm_workers(pipeline_proto: Any, pool: WarmPool) -> int:
    """Point the graph's Beam subprocess environments at ``pool``; returns how many were changed."""
    pool_id = f"{os.getpid()}-{next(_ids)}"
    _POOLS[pool_id] = pool
    changed = 0
    for environment in pipeline_proto.components.environments.values():
        if environment.urn == python_urns.SUBPROCESS_SDK and b"sdk_worker_main" in environment.payload:
            payload = {"pool": pool_id, "command": environment.payload.decode("utf-8")}
            environment.urn = WARM_URN
            environment.payload = json.dumps(payload).encode("utf-8")
            changed += 1
    return changed


def release(pool: WarmPool) -> None:
    """Forget ``pool`` (the run is over)."""
    for key, value in list(_POOLS.items()):
        if value is pool:
            del _POOLS[key]


class _WarmSdkWorker(local_job_service.SubprocessSdkWorker):
    """Beam's subprocess SDK worker, run in a process of the pool when one is left."""

    def __init__(self, pool: WarmPool | None, command: bytes, *args: Any) -> None:
        super().__init__(command, *args)
        self._pool = pool

    def run(self) -> None:
        process = self._pool.take() if self._pool is not None else None
        if process is None:
            return super().run()  # Beam's own start
        logging_server = grpc.server(
            thread_pool_executor.shared_unbounded_instance(),
            options=[("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)],
        )
        port = logging_server.add_insecure_port("[::]:0")
        logging_server.start()
        beam_fn_api_pb2_grpc.add_BeamFnLoggingServicer_to_server(
            local_job_service.BeamFnLoggingServicer(), logging_server
        )
        env = dict(
            os.environ,
            CONTROL_API_SERVICE_DESCRIPTOR=text_format.MessageToString(
                endpoints_pb2.ApiServiceDescriptor(url=self._control_address)
            ),
            LOGGING_API_SERVICE_DESCRIPTOR=text_format.MessageToString(
                endpoints_pb2.ApiServiceDescriptor(url=f"localhost:{port}")
            ),
            PIPELINE_OPTIONS=json_format.MessageToJson(self._provision_info.provision_info.pipeline_options),
        )
        if self._worker_id:
            env["WORKER_ID"] = self._worker_id
        try:
            if not process.hand_over(env):  # it died waiting: Beam's own start after all
                process.close()
                logging_server.stop(0)
                return super().run()
            returncode = process.proc.wait()
            if returncode:
                raise RuntimeError(f"Worker subprocess exited with return code {returncode}")
        finally:
            if process.proc.poll() is None:
                process.proc.kill()
            logging_server.stop(0)


@worker_handlers.WorkerHandler.register_environment(WARM_URN, bytes)
class WarmWorkerHandler(worker_handlers.SubprocessSdkWorkerHandler):
    """Beam's subprocess worker handler, whose worker process comes from a warm pool."""

    def __init__(self, payload: bytes, state: Any, provision_info: Any, grpc_server: Any) -> None:
        spec = json.loads(payload.decode("utf-8"))
        super().__init__(spec["command"].encode("utf-8"), state, provision_info, grpc_server)
        self._pool = _POOLS.get(spec["pool"])

    def start_worker(self) -> None:
        self.worker = _WarmSdkWorker(
            self._pool, self._worker_command_line, self.control_address, self.provision_info, self.worker_id
        )
        self.worker_thread = threading.Thread(name="run_worker", target=self.worker.run)
        self.worker_thread.start()
