"""The local runner: Beam's FnApiRunner without the Prism detour (runner), bounded bundles so that
workers share each stage (bounded_bundles), the live progress lines (progress), and workers that
stop together and without the interpreter's final clean-up (shutdown, sdk_worker_main)."""
