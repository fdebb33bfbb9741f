"""The built-in reactors, one module each with `build(settings) -> Reactor`; each runs as its own
process with `choreo reactor NAME`. They register as entry points in the group `choreo.reactors`
(pyproject.toml), exactly as a plugin package does; gateway/plugins.py reads them."""
