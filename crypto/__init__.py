"""wlx cryptographic core."""
