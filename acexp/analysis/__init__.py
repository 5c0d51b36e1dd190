"""Analysis of finished runs: finding them, statistics, survival, plots and the report."""
