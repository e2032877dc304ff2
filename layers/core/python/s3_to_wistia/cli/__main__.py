"""`python -m s3_to_wistia.cli ...`: the same as the `s3-to-wistia` console script."""

import sys

from s3_to_wistia.cli.main import main

sys.exit(main())
