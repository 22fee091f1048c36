"""Run the forecast CLI from a checkout: ``python cli.py --help``.

The Typer app lives in the package (``forecast.cli``) so that the installed
``forecast`` command, ``python -m forecast`` and this file share one app
without installing a top-level module named ``cli``.
"""

from forecast.cli import main

if __name__ == "__main__":
    main()
