"""bulkchime: bulk operations on Amazon Chime users, resumable and rate-limited."""

from __future__ import annotations

__version__ = "0.1.0"
