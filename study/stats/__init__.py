"""The statistics every report, sweep and API number comes from: plain functions on arrays (numpy, scipy,
statsmodels), one function per reported number, each checked by simulation with known truth at 3 to 30
seeds (`benchmarks/coverage.py`, `tests/test_coverage.py`; the README's "How seedvar's numbers are checked").

The base room: it imports nothing of seedvar, and the report, the sweep room and the API import it.
"""

# The choices of a spec field and a CLI flag (what --target-diff sizes at: Browne's 80% upper bound of the
# pilot std, or the pilot std itself), here rather than in twostage so that `seedvar --help` and reading a
# spec load no scipy.
STD_CHOICES = ("upper80", "pilot")

# The levels every number is printed at, here (no scipy) so that the option table's help reads them.
LEVEL = 0.95  # every interval the report prints, and the family-wise level of its comparisons
ALPHA = 1.0 - LEVEL  # the level of every test the report prints, and the family-wise rate of its comparisons
POWER = 0.8  # the power every seed count is sized for
UPPER = (
    0.8  # the one-sided confidence of the upper bound on a std that seed counts are sized at (Browne 1995)
)
