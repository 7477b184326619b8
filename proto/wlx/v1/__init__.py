"""Generated protobuf and gRPC code for the ``wlx.v1`` wire contract.

Do not edit the ``*_pb2*`` modules: ``scripts/gen-proto`` writes them from the
``.proto`` files beside them, and ``tests/test_proto_generated.py`` fails when
they are stale.  Application code converts these types to frozen dataclasses
at the boundary (``wlx.node.rpc.wire``) and never passes them further in.
"""
