"""`python3 -m tmr run ...`: see tmr.runner."""
import sys

from .runner import main

sys.exit(main())
