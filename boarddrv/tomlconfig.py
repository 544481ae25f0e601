"""TOML config files with errors that name the file, the line and the key.

The module itself is ``dsp.tomlconfig`` (dsp reads its tone plans with it
and must not import boarddrv); this is its name for the rest of the
project, re-exporting the same objects: ``boarddrv.tomlconfig.ConfigError``
*is* ``dsp.tomlconfig.ConfigError``, so one ``except`` catches errors from
board configs and tone plans alike. The API is described in dsp/tomlconfig.py.
"""
from __future__ import annotations

from dsp.tomlconfig import (
                            Config,
                            ConfigError,
                            ConfigErrors,
                            ErrorCollector,
                            KeyPath,
                            Node,
                            format_key,
                            load,
                            loads,
                            locate,
                            parse_key,
)

__all__ = ["ConfigError", "ConfigErrors", "ErrorCollector", "Config", "Node", "load", "loads",
           "format_key", "parse_key", "locate", "KeyPath"]
