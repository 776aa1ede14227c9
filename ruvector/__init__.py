"""RuVector plugin platform.

The flow, one package per stage:

    ruvector.toml (desired) -> reconciler -> executor -> hostcalls -> the machine

This package holds what every stage shares (the exception roots, the version)
and the command line, which is the only layer that prints.
"""

__version__ = "0.1.0"
