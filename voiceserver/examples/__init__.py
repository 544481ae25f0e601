"""Example programs of the network API (docs/acd-example.md)."""
