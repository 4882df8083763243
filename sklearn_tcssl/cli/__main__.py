"""``python -m sklearn_tcssl.cli``."""

import sys

from sklearn_tcssl.cli._main import main

sys.exit(main())
