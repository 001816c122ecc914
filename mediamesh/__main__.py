"""``python -m mediamesh``: the command line, for hosts where the ``mediamesh`` script is not on PATH."""

from mediamesh.orchestrator.cli import main

main()
