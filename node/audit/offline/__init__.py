"""What an auditor runs offline, with nothing but bundles and identity cards:
``bundle`` (the format), ``verify``, ``reconcile``, ``errors``.  Imports none of
the node's storage or transport."""
