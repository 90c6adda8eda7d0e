"""Corpus preparation (domains -> tokenized memory-mapped shards + meta) and reading."""
