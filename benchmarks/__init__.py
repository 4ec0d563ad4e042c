"""`make bench`: timings of the local cloud, as medians over repeated runs."""
