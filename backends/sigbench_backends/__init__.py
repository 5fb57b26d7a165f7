"""sigbench's built-in backends, one module per framework, each with the same methods in the same order.

Kept in ``backends/`` as a second source root so that no top-level package named ``backends`` is installed.
"""
