"""Typed readers of the fact files under infrastructure/: one module per file, one model per fact.

Everyone who needs a fact (the app, the local platform, the local cluster, the Pulumi program,
the tests) reads it through these modules; the charts read the same files through symlinks.
Nothing here imports from the rest of the project, so any layer may depend on it.
"""
