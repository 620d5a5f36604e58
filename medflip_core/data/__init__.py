"""Data sets on disk as plain records: labelled image folders, patient splits, labelled sentence corpora."""
