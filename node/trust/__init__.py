"""Who the node trusts, and with which keys.

* ``lifecycle``: new token epochs, key rotation, accepting a rotated peer card,
  revoking a peer;
* ``credentials``: officer, auditor and operator credentials the node issues.
"""
