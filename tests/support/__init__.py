"""Helpers shared by the tests (imported as ``support.*``; ``tests/`` is on
``sys.path`` because ``tests/conftest.py`` is there).

* ``nodes``: valid records, a settable clock, federations of serving nodes,
  storage on SQLite or PostgreSQL;
* ``audit``: a federation that exchanged everything, bundles, forgeries;
* ``processes``: free ports and ``wlx serve`` as a child process.
"""
