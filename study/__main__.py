"""`python -m study` is the same as the `seedvar` command."""

import sys

from study.cli import main

sys.exit(main())
