"""The command line: builds library objects, calls them, prints the outcome."""
