"""``python -m nbdebug [flags] script.py [args]``: see ``nbdebug.cli``."""

import sys

from nbdebug.cli import main

sys.exit(main())
