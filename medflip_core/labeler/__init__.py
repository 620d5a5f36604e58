"""Rule-based knowledge extraction: report text -> CheXpert label vector, with negation and uncertainty."""

from medflip_core.labeler.rules import Mention, explain_sentence, label_report, label_sentence

__all__ = ["Mention", "explain_sentence", "label_report", "label_sentence"]
