import sys

from rush.entry import main

sys.exit(main())
