"""Backtests: per ticker (walk-forward) and cross-sectional."""
