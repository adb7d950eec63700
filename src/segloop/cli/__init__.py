"""The ``segloop`` command line: thin commands over the library's API functions."""
