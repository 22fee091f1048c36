"""Pure numpy/pandas maths: windows, intervals, scores, cross-sectional ranks, signals. No I/O."""
