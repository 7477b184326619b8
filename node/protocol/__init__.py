"""The federation protocol's decisions, with no I/O (docs/protocol.md).

``codec`` parses and builds payloads, ``envelopes`` signs, seals and opens
them, ``outbound`` makes what an origin sends, ``inbound`` decides whether
what a recipient received may be applied and what it changes.
"""
