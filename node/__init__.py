"""wlx node."""
