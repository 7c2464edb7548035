"""Subcommands of the ``kmm`` command line (see ``kmm.cli.COMMANDS``)."""
