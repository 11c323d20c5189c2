"""The run's statistics and report: stats.json from the counters (stats), the report's tables
(data), its plots (plots) and report.html (html)."""
