"""The benchmark harness behind ``make bench``: campusgate vs nginx vs a direct call.

Pure parts (config generation, wrk output parsing, reports) are plain functions over
plain values and are tested in ``tests/test_benchmarks_smoke.py``; the process and
load-generation shells live in :mod:`cgbench.procs`, :mod:`cgbench.loadgen` and
``benchmarks/run.py``.
"""
