"""Every goal in one side-by-side table: ``python -m benchmarks [--quick]``.

See :mod:`benchmarks.goals`; the first release's targets table is
``python -m benchmarks.targets``.
"""

from __future__ import annotations

from .goals import main

if __name__ == "__main__":
    main()
