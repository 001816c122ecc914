"""``python -m orchestrator`` is the ``mediamesh`` command."""

from orchestrator.cli import main

main()
