"""The local runner: Beam's FnApiRunner without the Prism detour (runner), bounded bundles so that
workers share each stage (bounded_bundles), and the live progress lines (progress)."""
