"""The host side of ABI v1: capabilities, system access and host functions.

This layer knows nothing of the executor or of ruvector.toml: it is handed a
plugin's granted capabilities and its guest memory, and acts on the machine.
"""
