"""`python -m acexp.report <sweep dir>`: the seed-aggregated report of a sweep (acexp.analysis)."""

from acexp.analysis.report import main

if __name__ == "__main__":
    raise SystemExit(main())
