"""Exit statuses of the ``imagekit_migrate`` and ``imagekit_orphans`` commands, in one place
(documented in docs/migrating.md): scripts and CI jobs branch on them."""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE"]

#: Some file failed (the report says which).
EXIT_FAILED = 1
#: The command line or a setting is wrong; nothing was done.
EXIT_USAGE = 2
#: Stopped by Ctrl-C: 128 + SIGINT, as shells report it.
EXIT_INTERRUPTED = 130
