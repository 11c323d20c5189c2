"""Runner selection: the local default is Beam's FnApiRunner in multi-processing mode, never Prism.

Beam's ``DirectRunner`` first tries the Prism runner, which downloads a binary from GitHub at start
and fails (or hangs on a slow DNS) offline. :class:`LocalRunner` takes the branch the DirectRunner
takes for batch pipelines once Prism is out of the way: the FnApiRunner, with the pipeline options
handed to its workers.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    StandardOptions,
    WorkerOptions,
)
from apache_beam.runners.direct.direct_runner import DirectRunner

from corpusforge.pipelines.local.worker_count import default_workers

LOCAL_RUNNER_NAMES = {None, "", "DirectRunner", "directrunner", "direct", "LocalRunner"}


class LocalRunner(DirectRunner):
    """The DirectRunner's FnApiRunner path, without the Prism detour.

    With a ``progress`` (:class:`corpusforge.pipelines.local.progress.Progress`), each finished bundle's
    counters are reported to it while the run goes.
    """

    def __init__(self, progress=None, warm_pool=None) -> None:  # noqa: ANN001 - imported lazily
        super().__init__()
        self.progress = progress
        # a warm.WarmPool: SDK worker processes started ahead (see pipelines/local/warm.py)
        self.warm_pool = warm_pool

    def run_pipeline(self, pipeline, options):  # noqa: D102 - see class docstring
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        from corpusforge.pipelines.local.bounded_bundles import BoundedBundlesFnApiRunner

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
        if self.progress is not None:
            from corpusforge.pipelines.local.progress import ProgressFnApiRunner

            runner = ProgressFnApiRunner(self.progress, provision_info=info)
        else:
            runner = BoundedBundlesFnApiRunner(provision_info=info)
        runner.warm_pool = self.warm_pool
        return runner.run_pipeline(pipeline, options)


def local_options(workers: int | None = None, extra: list[str] | None = None) -> PipelineOptions:
    """Pipeline options for a local multi-process run with ``workers`` processes (default: cores)."""
    options = PipelineOptions(extra or [])
    direct = options.view_as(DirectOptions)
    if direct.direct_running_mode in (None, "in_memory") and "--direct_running_mode" not in " ".join(
        extra or []
    ):
        direct.direct_running_mode = "multi_processing"
    if not any(a.startswith("--default_sdk_harness_log_level") for a in (extra or [])):
        options.view_as(WorkerOptions).default_sdk_harness_log_level = "WARNING"
    if workers is not None:
        direct.direct_num_workers = workers
    elif not _names_option(extra, "--direct_num_workers"):
        direct.direct_num_workers = default_workers()
    return options


def _names_option(args: list[str] | None, name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in (args or []))


def local_worker_processes(workers: int | None, extra: list[str] | None) -> int:
    """How many SDK worker processes a run with these arguments starts on the local runner: the
    multi-processing FnApiRunner's worker count (0 for another runner or running mode)."""
    options = local_options(workers, extra)
    if not isinstance(resolve_runner(options), LocalRunner):
        return 0
    direct = options.view_as(DirectOptions)
    if direct.direct_running_mode != "multi_processing":
        return 0
    return direct.direct_num_workers or default_workers()


def resolve_runner(options: PipelineOptions):
    """The runner object for ``options``: LocalRunner for the direct runner, else Beam's name."""
    name = options.view_as(StandardOptions).runner
    if name in LOCAL_RUNNER_NAMES:
        return LocalRunner()
    if str(name).lower().startswith("prism"):
        raise ValueError(
            "the Prism runner downloads a binary at start and is not supported offline; "
            "use the default local runner, PortableRunner, DataflowRunner, SparkRunner or FlinkRunner"
        )
    return name
