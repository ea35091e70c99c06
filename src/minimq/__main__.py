"""``python -m minimq`` runs the command line."""

import sys

from minimq.cli.main import main

sys.exit(main())
