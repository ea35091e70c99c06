"""The ``minimq`` command line: one subcommand per module, each a thin shell."""
