"""The ``wlx`` console script: quiet gRPC's own logging, then run the CLI.

gRPC's C core prints handshake failures and bind errors to stderr itself;
a command's failure is already its own one ``error:`` line, so unless the
user asks for ``-v`` (or sets ``GRPC_VERBOSITY``), the core stays quiet.
This must happen before grpc is imported, hence this module.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Console-script entry point."""
    if not {"-v", "--verbose"} & set(sys.argv[1:]):
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from wlx.node.cli.main import main as cli_main

    cli_main()
