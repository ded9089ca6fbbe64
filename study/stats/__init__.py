"""The statistics every report, sweep and API number comes from: plain functions on arrays (numpy, scipy,
statsmodels), one function per reported number, each checked by simulation with known truth at 3 to 30
seeds (`benchmarks/coverage.py`, `tests/test_coverage.py`; the README's "How seedvar's numbers are checked").

The base room: it imports nothing of seedvar, and the report, the sweep room and the API import it.
"""
