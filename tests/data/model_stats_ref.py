#!/usr/bin/env python3
"""Reference values for tests/check_model.c, computed with scipy (an
implementation independent of mxverify's GSL code).

  wilson K N LO95 HI95 LOWER95   two-sided 95 % Wilson interval (no continuity
                                 correction) and the one-sided 95 % lower bound
                                 (scipy.stats.binomtest(k, n).proportion_ci(
                                 method="wilson"), alternative="greater")
  mcnemar B C P_TWO P_WORSE      McNemar's exact test on the discordant pairs:
                                 binomtest(min(b,c)... ) two-sided p and the
                                 one-sided p that TEST is worse (X >= b,
                                 X ~ Binomial(b + c, 1/2))

Run: python3 tests/data/model_stats_ref.py > tests/data/model_stats_ref.tsv
"""
import sys

import numpy
import scipy
from scipy.stats import binomtest

print(f"# made by tests/data/model_stats_ref.py with Python {sys.version.split()[0]}, "
      f"scipy {scipy.__version__}, numpy {numpy.__version__}")
print("# columns: see the script; values printed with repr() (17 significant digits)")

cases = [(0, 1), (1, 1), (0, 10), (10, 10), (7, 10), (1319, 1319),
         (1200, 1319), (1187, 1319), (1188, 1319), (1170, 1319), (1150, 1319),
         (50, 100), (93, 100), (1, 1000), (999, 1000), (12345, 20000),
         (4, 7), (88, 97)]
for k, n in cases:
    r = binomtest(k, n)
    ci = r.proportion_ci(confidence_level=0.95, method="wilson")
    lo1 = binomtest(k, n, alternative="greater").proportion_ci(
        confidence_level=0.95, method="wilson").low
    print(f"wilson\t{k}\t{n}\t{float(ci.low)!r}\t{float(ci.high)!r}\t{float(lo1)!r}")

pairs = [(0, 1), (1, 0), (1, 1), (5, 0), (0, 5), (10, 3), (3, 10), (12, 12),
         (30, 14), (14, 30), (61, 40), (100, 70), (7, 1), (25, 9), (200, 150),
         (3, 0), (40, 41)]
for b, c in pairs:
    n = b + c
    p_two = binomtest(min(b, c), n, 0.5, alternative="two-sided").pvalue
    p_worse = binomtest(b, n, 0.5, alternative="greater").pvalue
    print(f"mcnemar\t{b}\t{c}\t{float(p_two)!r}\t{float(p_worse)!r}")
