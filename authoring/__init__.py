"""Plugin authoring tools: build a plugin from source, make a new one, inspect one."""
