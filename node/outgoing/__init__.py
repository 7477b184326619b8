"""The origin side: the node's own list and what it sends each peer.

* ``ownlist``: records in and out, the change log, retention;
* ``origin``: trusted peers, sharing policies, batches (materialise), and
  serving peers' pulls and snapshots;
* ``receipts``: verifying the signed receipts peers send back.
"""
