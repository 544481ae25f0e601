"""China No.1 / ITU-T System R2 signalling for E1 trunks, as sans-I/O state machines.

variants   the variant tables (TOML package data) and per-span overrides
actions    what the machines ask of their driver and tell the call layer
line       line signalling (ABCD bits) of one channel
register   the compelled MF register signalling, outgoing and incoming
channel    one trunk channel: line plus register, wired together
timers     a small timer queue for whoever drives the machines

See docs/r2.md.
"""
