import sys

from rush.cli import main

sys.exit(main())
