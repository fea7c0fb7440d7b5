"""The vocabulary every layer of churnclv shares: errors, atomic files, column names, defaults, dates
and settings. It imports nothing else of churnclv, and every other package may import it.

Layers, lowest first (``tests/test_layers.py`` keeps them so): ``contract`` < ``features`` <
``scoring`` < ``training``, ``serving`` < ``churnclv`` (the command line). ``seeds`` (generated data)
sits beside ``features``.
"""

from churnclv.contract.errors import ChurnclvError, first_line
from churnclv.contract.files import write_atomic, write_table

__all__ = ["ChurnclvError", "first_line", "write_atomic", "write_table"]
