"""The accuracy sweeps: ULP error of each sigmoid and its derivative (sampled or exhaustive), and the
loss table. They compute rows only; ``sigbench.report.accuracyreport`` writes and renders them.
"""
