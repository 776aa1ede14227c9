"""The plugin registry: a TUF-secured tree of static files, its tooling and its client."""
