"""The machine's description: the cache levels a roofline plot marks (sysfs, else ``lscpu -C``)."""
from sigbench.measure import machine


def write_cache(root, index, level, kind, size):
    folder = root / f"index{index}"
    folder.mkdir(parents=True)
    (folder / "level").write_text(f"{level}\n")
    (folder / "type").write_text(f"{kind}\n")
    (folder / "size").write_text(f"{size}\n")


def test_cache_levels_are_read_from_sysfs(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "lscpu_caches", lambda: {"L1d": 1, "L2": 2, "L3": 3})  # never consulted
    write_cache(tmp_path, 0, 1, "Data", "48K")
    write_cache(tmp_path, 1, 1, "Instruction", "32K")
    write_cache(tmp_path, 2, 2, "Unified", "2048K")
    write_cache(tmp_path, 3, 3, "Unified", "96M")
    assert machine.cache_sizes(tmp_path) == {"L1d": 48 << 10, "L2": 2 << 20, "L3": 96 << 20}


def test_a_level_sysfs_lacks_comes_from_lscpu_or_stays_unknown(tmp_path, monkeypatch):
    write_cache(tmp_path, 0, 1, "Data", "32K")
    write_cache(tmp_path, 1, 2, "Unified", "1024K")  # no L3 (or a VM that hides it)
    monkeypatch.setattr(machine, "lscpu_caches", lambda: {"L1d": 1, "L3": 32 << 20})
    assert machine.cache_sizes(tmp_path) == {"L1d": 32 << 10, "L2": 1 << 20, "L3": 32 << 20}
    monkeypatch.setattr(machine, "lscpu_caches", dict)
    assert machine.cache_sizes(tmp_path / "missing") == {"L1d": None, "L2": None, "L3": None}


def test_lscpu_cache_lines_are_parsed_in_bytes_or_units():
    text = ("NAME ONE-SIZE\nL1d     32768\nL1i     32768\nL2    1048576\nL3   33554432\n")
    assert machine.parse_lscpu_caches(text) == {"L1d": 32768, "L2": 1 << 20, "L3": 32 << 20}
    assert machine.parse_lscpu_caches("L1d 48 KiB\nL2 1.5 MiB\nL3 -\n") == {"L1d": 48 << 10, "L2": 3 << 19,
                                                                             "L3": None}
    assert machine.size_bytes("32K") == 32768 and machine.size_bytes("1 MiB") == 1 << 20
    assert machine.size_bytes("") is None and machine.size_bytes("n/a") is None
