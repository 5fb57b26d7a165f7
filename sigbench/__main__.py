from __future__ import annotations

import sys

from sigbench.cli import main

sys.exit(main())
