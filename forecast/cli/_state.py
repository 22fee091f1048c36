"""What the global options chose for this invocation, and the library objects built from it.

One ``state`` per process, reset by the root group at the start of every
invocation (tests run the CLI many times in one process). The library is
imported inside each method, so importing this module costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional


@dataclass
class State:
    home: Optional[Path] = None  # --home / $FORECAST_HOME; None means the current directory
    as_json: bool = False  # set by --json while the command's options are parsed; the error boundary reads it
    json_requested: bool = False  # --json is on the command line, even if parsing failed before reading it

    resolved: Any = None  # the Workspace of ``home``, resolved once per invocation and passed on from there

    def reset(self) -> None:
        self.home, self.as_json, self.json_requested, self.resolved = None, False, False, None

    def workspace(self, checked: bool = True):
        """The home of this invocation; ``checked``: a home that is a file is bad input here, in one line (doctor looks itself).

        The home is resolved once per invocation (the first call), so every part of a command works in the same one.
        """
        from forecast.workspace import Workspace

        if self.resolved is None:
            self.resolved = Workspace.at(self.home)
        workspace = self.resolved
        if checked and workspace.root.exists() and not workspace.root.is_dir():
            from forecast.errors import BadInputError

            raise BadInputError(f"the home {workspace.root} is a file, not a folder: point --home or FORECAST_HOME at a folder")
        return workspace

    def store(self):
        from forecast.data.store import MarketStore

        return MarketStore(self.workspace())

    def registry(self):
        from forecast.models.registry import ModelRegistry

        return ModelRegistry(self.workspace())

    def app_config(self, config_file: Optional[Path]):
        from forecast.workflow.settings import load_app_config

        return load_app_config(self.workspace(), config_file)

    def watchlist(self) -> tuple[str, ...]:
        """The tickers of forecast.toml (the ``watchlist`` universe), read only when a command names that universe."""
        return self.app_config(None).tickers

    def tushare_client(self):
        """Make the tushare client; passed uncalled, so that only something that needs the network makes it.

        The token: $TUSHARE_TOKEN, then $TS_TOKEN, then forecast.toml's [tushare] token; the per-minute call rate:
        $FORECAST_TUSHARE_CALLS_PER_MINUTE, then [tushare] calls_per_minute (config owns both orders).
        A CSV-only ticker, or a universe served from its cache, needs no token.
        """
        from forecast.data.sources.tushare_pro import TushareClient

        config = self.app_config(None)
        return TushareClient(config.tushare_token, calls_per_minute=config.tushare_calls_per_minute)


state = State()
