"""``python -m mediamesh``: the command line, for hosts where the ``mediamesh`` script is not on PATH."""

from mediamesh.orchestrator.interfaces.cli import main

main()
