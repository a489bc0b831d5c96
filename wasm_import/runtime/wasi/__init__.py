"""WASI 0.2 as ordinary Python host implementations of the WIT interfaces.

`wasi:io`, `wasi:clocks`, `wasi:random`, `wasi:cli` and `wasi:filesystem` live here
(`wasi:sockets` and `wasi:http` beside them), served to a component like any other
import: one object per imported interface, built per instance from its `Wasi` grants.
"""
