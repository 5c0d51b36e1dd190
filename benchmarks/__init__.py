"""Speed benchmarks for acexp. Not part of the installed ``acexp`` package."""
