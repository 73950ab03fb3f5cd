"""The synthetic data set on disk: writer, reader and dataset card."""
