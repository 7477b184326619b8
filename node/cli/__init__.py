"""The ``wlx`` command line (click): ``main`` (node, peers, records, serve,
sync, status), ``admin`` (credentials, keys, epochs), ``audit``, ``officer``
(lookup, screen, detail), ``common`` (shared options), ``entry`` (the console
script)."""
