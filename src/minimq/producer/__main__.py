"""``python -m minimq.producer``: the same as ``minimq producer``."""

import sys

from minimq.producer.cli import main

sys.exit(main())
