"""Benchmarks of xnatd against baselines measured in the same run on the same disk (`make bench`)."""
