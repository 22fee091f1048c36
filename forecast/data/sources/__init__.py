"""Where bars come from: the tushare Pro API, CSV files, and the bundled sample.

This package is the only code in the project that touches the network.
"""
