"""``python -m app`` is the ``rankr-ghl-sync`` command."""

from app.cli import main

main()
