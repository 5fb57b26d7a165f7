"""How one number is obtained: the timer, the statistics, the machine's limits, the description of the
machine, and the numerics checks of one result against the reference. No pandas, no files.
"""
