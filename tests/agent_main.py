"""`rush agent` entry point for subprocess tests, without building the whole CLI parser."""

from __future__ import annotations

import argparse
import sys

from rush.cli import agent, setup_logging
from rush.config import load_config


def main() -> int:
    config = load_config(None)
    setup_logging(config)
    return agent.run(argparse.Namespace(id=None, library_mount=None), config)


if __name__ == "__main__":
    sys.exit(main())
