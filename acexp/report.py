"""`python -m acexp.report <sweep dir>`: the seed-aggregated report of a sweep (acexp.analysis)."""

import sys

from acexp.analysis.report import main
from acexp.errors import one_line_errors

if __name__ == "__main__":
    with one_line_errors(prog="acexp.report"):
        code = main()
    sys.exit(code)
