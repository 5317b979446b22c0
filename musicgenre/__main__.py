import sys

from musicgenre.cli import main

sys.exit(main())
