"""The gRPC edge: every server and client of the node (the only package, with
``wlx.node.cli``, that imports ``grpc``).

* ``server``: thin servicers; ``auth``: roles on every RPC (interceptor);
* ``transport``: mutual TLS channels and credentials; ``status_codes``: node
  errors to gRPC status codes and back, in one place; ``wire``: lookup
  messages to dataclasses;
* clients: ``sync_client`` (pull from peers), ``announce`` (rotated cards),
  ``cosign`` (checkpoints to witnesses), ``audit_client`` (the Auditor
  service); ``audit_service``: the Witness and Auditor services.
"""
