"""JSON Schemas of the files users write (ruvector.toml, manifest.toml).

A package only so the schemas install with the code; read them as files.
"""
