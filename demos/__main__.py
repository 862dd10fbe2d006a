"""``python -m demos [NAME ...] [--quick] [--out DIR]``: see :mod:`demos.run`."""

import sys

from demos.run import main

sys.exit(main())
