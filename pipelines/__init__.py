"""Assembly of a run: the command line (cli), the graph (build), the table of stages (stages), the
local runner (local/) and the run's statistics and report (report/)."""
