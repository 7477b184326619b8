"""The node's core: what every part shares, with no storage and no transport.

* ``node``: ``Node``, an open node (configuration, keys, store handle, clock, randomness);
* ``config``: the node directory's configuration file and key files;
* ``records``: a listed person and the listing, validated (import formats);
* ``policy``: the per-peer sharing policy;
* ``errors``: the error tree (whose fault: user, peer, unavailable, ours);
* ``limits``: rate limits and quotas; ``metrics``: Prometheus counters;
* ``failpoints``: crash points for tests.
"""
