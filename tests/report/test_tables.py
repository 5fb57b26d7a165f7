"""Numbers the report derives from rows."""
from sigbench.report import tables


def test_half_peak_batch_is_the_smallest_reaching_half_the_peak():
    # peak 100 at 4096; 60 at 1024 reaches half, 20 at 256 does not
    assert tables.half_peak_size([4096, 32, 256, 1024], [100.0, 10.0, 20.0, 60.0]) == (100.0, 4096, 1024)
    # a curve that falls after its peak (out of cache): the half is still where it first gets there
    assert tables.half_peak_size([32, 256, 1024, 4096], [30.0, 100.0, 60.0, 20.0]) == (100.0, 256, 256)
    assert tables.half_peak_size([32, 256], [50.0, 100.0]) == (100.0, 256, 32)
    assert tables.half_peak_size([32], [float("nan")]) is None
