"""The contracts every stage builds on: the backend interface, the workloads, the float64 reference,
the registry of backends, errors and versions. It imports nothing above it (and no framework, no pandas).
"""
