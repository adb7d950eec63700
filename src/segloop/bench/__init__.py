"""Benchmarks: ``segloop bench SUITE ... --json OUT``.

Every suite writes the same top level (see :func:`segloop.bench.report.bench_report`),
so results can be compared across versions.
"""
