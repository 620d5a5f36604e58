"""Radiology report corpora: Open-i XML (folder, file or the original .tgz), CSV and TXT; sentences."""

from medflip_core.reports.corpus import Report, load_reports, load_sentence_corpus
from medflip_core.reports.sentence_split import clean_deid, split_sentences

__all__ = ["Report", "clean_deid", "load_reports", "load_sentence_corpus", "split_sentences"]
