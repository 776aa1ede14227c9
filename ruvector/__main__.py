"""`python -m ruvector`, the same as the console script."""

from ruvector.cli.main import main

main()
