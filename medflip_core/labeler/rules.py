"""The rule-based labeler (the paper's Knowledge Extraction), in the manner of NegBio / CheXpert:
find mentions, then decide for each whether it is negated, uncertain or positive from the words
around it within its clause."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from medflip_core.labeler.labels import CHEXPERT_LABELS, LABEL_INDEX, NEGATIVE, POSITIVE, UNCERTAIN
from medflip_core.labeler.phrases import COMPILED, NORMAL_STATEMENTS, OTHER_ABNORMAL_RE
from medflip_core.reports.sentence_split import clean_deid, split_sentences

# Words before a mention, in the same clause, that negate it.
_PRE_NEG = re.compile(
    r"\b(?:no|not|without|negative\s+for|free\s+of|absence\s+of|absent|clear\s+of|resolution\s+of|resolved"
    r"|removal\s+of|removed|nor|neither|never|ruled\s+out|no\s+(?:evidence|signs?|findings?)\s+of"
    r"|(?:has|have)\s+(?:since\s+)?resolved|interval\s+resolution\s+of|exclude[sd]?)\b",
    re.IGNORECASE,
)
# Words after a mention that negate it ("pneumothorax is not seen", "effusion has resolved").
_POST_NEG = re.compile(
    r"^[\s,]*(?:(?:is|are|was|were|has|have|had)\s+)?(?:(?:been|now)\s+)?(?:not\s+(?:seen|identified|present|visualized|"
    r"demonstrated|evident|appreciated|detected|noted|enlarged|visible)|no\s+longer\s+(?:seen|present|visualized|evident)"
    r"|resolved|absent|cleared|removed)\b",
    re.IGNORECASE,
)
# Hedges before a mention in the same clause.
_PRE_UNC = re.compile(
    r"\b(?:may|might|question(?:able|ably)?|possibl[ey]|probabl[ey]|likely|suspicious|suspect(?:ed)?|"
    r"concern(?:ing)?\s+for|cannot\s+(?:be\s+)?(?:exclude[d]?|ruled?\s+out)|can\s*not\s+(?:be\s+)?exclude[d]?|"
    r"not\s+(?:be\s+)?excluded|could|would|suggest\w*|consider\w*|differential|equivocal|versus|vs\.?|"
    r"(?:rule|ruled)\s+out|compatible\s+with|consistent\s+with|representing|represents?|reflect\w*|"
    r"indeterminate|borderline|atypical|either|and/or|correlat\w*\s+(?:clinically\s+)?(?:for|with)|evaluat\w*\s+for"
    r"|assess\w*\s+for|\?)",
    re.IGNORECASE,
)
# Hedges after a mention ("... versus atelectasis", "atelectasis is possible").
_POST_UNC = re.compile(
    r"^[\s,]*(?:[\w-]+\s+){0,2}?(?:(?:is|are|was|were)\s+)?(?:(?:possible|suspected|questioned|likely|versus|vs\.?|"
    r"(?:cannot|can\s*not|not)\s+(?:be\s+)?(?:\w+\s+)?excluded))",
    re.IGNORECASE,
)
# Where a clause ends: negation and hedging do not reach across these.
_SCOPE_BREAK = re.compile(
    r"\b(?:but|however|although|though|except|which|aside\s+from|apart\s+from|otherwise|whereas|while|"
    r"there\s+is|there\s+are|with\s+(?:a|an|the|mild|moderate|small|large)|and\s+(?:a|an|the)\b"
    r"(?!\s+(?:pleural|effusion|pneumothorax|consolidation|focal))|due\s+to|secondary\s+to|in\s+the\s+setting|in\s+(?:a|this|the)\s+patient)\b|[;:]",
    re.IGNORECASE,
)
# Phrases that look like a hedge but state "consistent with"-style certainty in CheXpert: kept uncertain
# only for "may/possible..." words; "consistent with" is treated as positive as CheXpert does.
_CERTAIN_LINKS = re.compile(r"\b(?:compatible|consistent)\s+with\s*$", re.IGNORECASE)
_MAX_SCOPE_WORDS = 14


OTHER = "Other abnormality"  # outside the label space; blocks No Finding when positive


@dataclass(frozen=True)
class Mention:
    label: str
    phrase: str
    status: str  # "positive" | "negative" | "uncertain"
    span: tuple[int, int]


def _clause_before(text: str, start: int) -> str:
    before = text[:start]
    cut = 0
    for match in _SCOPE_BREAK.finditer(before):
        cut = match.end()
    words = before[cut:].split()
    return " ".join(words[-_MAX_SCOPE_WORDS:])


def _clause_after(text: str, end: int) -> str:
    after = text[end:]
    match = _SCOPE_BREAK.search(after)
    return after[: match.start()] if match else after


def _status(text: str, start: int, end: int) -> str:
    before = _clause_before(text, start)
    after = _clause_after(text, end)
    hedge_before = _PRE_UNC.search(before)
    if hedge_before and _CERTAIN_LINKS.search(before[hedge_before.start():]):
        hedge_before = None
    # "cannot exclude" / "not excluded" contain negation words but are hedges: test them first.
    if re.search(r"(?:cannot|can\s*not|not)\s+(?:be\s+)?(?:\w+\s+)?(?:exclude|excluded|ruled?\s+out)|rule\s+out",
                 before, re.IGNORECASE) or re.search(
            r"^[\s,]*(?:[\w-]+\s+){0,2}?(?:is\s+|are\s+)?(?:cannot|can\s*not|not)\s+(?:be\s+)?(?:\w+\s+)?excluded",
            after, re.IGNORECASE):
        return "uncertain"
    if _PRE_NEG.search(before) or _POST_NEG.search(after):
        return "negative"
    if hedge_before or _POST_UNC.search(after):
        return "uncertain"
    return "positive"


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", clean_deid(text)).strip()


def explain_sentence(text: str) -> list[Mention]:
    """Every mention in a sentence with its label, phrase, status and character span (of the cleaned text)."""
    sentence = _normalise(text)
    mentions: list[Mention] = []
    for label, pattern in COMPILED.items():
        for match in pattern.finditer(sentence):
            status = _status(sentence, match.start(), match.end())
            mentions.append(Mention(label, match.group(0), status, (match.start(), match.end())))
    for match in OTHER_ABNORMAL_RE.finditer(sentence):
        status = _status(sentence, match.start(), match.end())
        mentions.append(Mention(OTHER, match.group(0), status, (match.start(), match.end())))
    for match in NORMAL_STATEMENTS.finditer(sentence):
        mentions.append(Mention("No Finding", match.group(0), "positive", (match.start(), match.end())))
    return sorted(mentions, key=lambda m: m.span)


_RANK = {"positive": 3, "uncertain": 2, "negative": 1}
_VALUE = {"positive": POSITIVE, "uncertain": UNCERTAIN, "negative": NEGATIVE}


def _merge(mentions: list[Mention]) -> dict[str, str]:
    """Per label, the strongest status: positive beats uncertain beats negative."""
    best: dict[str, str] = {}
    for m in mentions:
        if m.label in ("No Finding", OTHER):
            continue
        if _RANK[m.status] > _RANK.get(best.get(m.label, ""), 0):
            best[m.label] = m.status
    return best


def _vector(best: dict[str, str], normal: bool, negated_any: bool, other: bool = False) -> np.ndarray:
    vec = np.zeros(len(CHEXPERT_LABELS), dtype=np.float32)
    for label, status in best.items():
        vec[LABEL_INDEX[label]] = _VALUE[status]
    pathology = [lb for lb in CHEXPERT_LABELS if lb not in ("No Finding", "Support Devices")]
    if not other and not any(vec[LABEL_INDEX[lb]] != 0 for lb in pathology) and (normal or negated_any):
        vec[LABEL_INDEX["No Finding"]] = POSITIVE
    return vec


def label_sentence(text: str) -> np.ndarray:
    """(14,) float32 over CHEXPERT_LABELS: 1 positive, -1 uncertain, 0 absent or negated.

    No Finding is 1 when the sentence states normality and names no positive or uncertain pathology.
    """
    mentions = explain_sentence(text)
    normal = any(m.label == "No Finding" for m in mentions)
    other = any(m.label == OTHER and m.status != "negative" for m in mentions)
    return _vector(_merge(mentions), normal, negated_any=False, other=other)


def label_report(text: str) -> np.ndarray:
    """(14,) over a whole report: mentions merged across sentences; No Finding as CheXpert defines it,
    required to rest on a normal statement or a negated finding rather than on silence."""
    mentions = [m for sentence in split_sentences(text) for m in explain_sentence(sentence)]
    normal = any(m.label == "No Finding" for m in mentions)
    negated = any(m.status == "negative" and m.label not in ("No Finding", OTHER) for m in mentions)
    other = any(m.label == OTHER and m.status != "negative" for m in mentions)
    return _vector(_merge(mentions), normal, negated, other)
