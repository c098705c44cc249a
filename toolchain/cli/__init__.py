"""The `gadget` command line: the app, one thin module per command group, shared options."""
