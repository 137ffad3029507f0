"""The ``inceptionkit`` command line: one thin file per command group."""
