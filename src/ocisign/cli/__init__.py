"""The command line: the lazy ``ocisign`` app, shared options, per-run context, one module per command."""
