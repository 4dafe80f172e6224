"""One minute of mixed load: no unexpected error, RSS flat after warm-up."""
from soak import soak


def test_one_minute_soak():
    result = soak(60)
    print(result)
    assert result["alive"]
    assert result["unexpected"] == 0, result["problems"]
    assert result["calls"] > 2_000
    # Flat: the end within 10 % (and 4 MiB of allocator slack) of the level after warm-up.
    assert result["rss_end_kib"] <= result["rss_warm_kib"] * 1.10 + 4096, result
