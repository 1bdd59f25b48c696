"""The ``edgefas`` command line: one module per command group, registered in :mod:`edge.cli.app`."""
