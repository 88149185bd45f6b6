"""The `xnatd` command."""
