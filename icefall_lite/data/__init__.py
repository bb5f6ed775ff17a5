"""Corpus synthesis, manifests, features, BPE and batches."""
