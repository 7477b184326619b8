"""The receiving side: what peers send, and the lookups answered from it.

* ``receiver``: verify-then-persist of batches and snapshots, rejections, purges;
* ``lookup``: a person (or a manifest) against every list the node holds.
"""
