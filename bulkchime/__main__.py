"""``python -m bulkchime``: the same as the ``bulkchime`` command."""

from .cli import main

main()
