"""`python -m seedvar` is the same as the `seedvar` command."""

import sys

from seedvar.cli import main

sys.exit(main())
