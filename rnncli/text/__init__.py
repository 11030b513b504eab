"""Text in, ids out: readers for the three formats, the vocabulary, encoded data sets, batches."""
