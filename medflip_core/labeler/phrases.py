"""What each CheXpert observation is called in reports: one regular expression per class.

Written from how the IU/Open-i reports phrase things. Normal statements ("heart size is normal")
are deliberately not mentions of the abnormality: they are No Finding evidence instead.
"""

from __future__ import annotations

import re

_SEV = (
    r"(?:(?:mild(?:ly)?|moderate(?:ly)?|marked(?:ly)?|severe(?:ly)?|slight(?:ly)?|minimal(?:ly)?|massive(?:ly)?"
    r"|stable|persistent|borderline|new|increased|chronic|small|large|possible|probable)\s+)*"
)

MENTIONS: dict[str, str] = {
    "Enlarged Cardiomediastinum": (
        r"widen(?:ed|ing)\s+(?:of\s+the\s+)?(?:superior\s+)?mediastin\w*"
        r"|mediastin\w*\s+(?:silhouette\s+|contours?\s+)?(?:is\s+|are\s+)?" + _SEV + r"(?:widen\w*|enlarge\w*)"
        r"|enlarged\s+cardiomediastinal\s+(?:silhouette|contours?)"
        r"|cardiomediastinal\s+(?:silhouette|contours?)\s+(?:is\s+|are\s+)?" + _SEV + r"(?:enlarged|widened)"
        r"|mediastinal\s+(?:mass|enlargement|widening)"
    ),
    "Cardiomegaly": (
        r"cardiomegaly"
        r"|enlarge(?:d|ment\s+of)\s+(?:the\s+)?(?:heart|cardiac\s+(?:silhouette|shadow))"
        r"|cardiac\s+enlargement|enlargement\s+of\s+the\s+heart"
        r"|(?:heart|cardiac\s+(?:silhouette|shadow|size)|heart\s+size)\s+(?:is\s+|are\s+|remains\s+|appears\s+)?"
        r"(?:again\s+)?" + _SEV + r"(?:enlarged|increased|large|prominent)"
        r"|(?:heart|cardiac)\s+size\s+(?:is\s+)?(?:at\s+the\s+)?upper\s+limits?\s+of\s+normal"
        r"|enlarged\s+heart|(?:large|prominent)\s+(?:heart|cardiac\s+silhouette)"
    ),
    "Lung Opacity": (
        r"opaci(?:ty|ties|fication|fications|fied)|infiltrat(?:e|es|ion|ive)"
        r"|air[\s-]?space\s+(?:disease|process|opacit\w*)|hazy|haziness|densit(?:y|ies)(?!\s+of\s+bone)"
        r"|interstitial\s+(?:markings|prominence|disease|opacit\w*|process|pattern)|reticular\s+(?:markings|opacit\w*)"
    ),
    "Lung Lesion": (
        r"nodul(?:e|es|ar)|(?<!chest\swall\s)(?<!soft\stissue\s)mass(?:es)?\b"
        r"|(?<!bony\s)(?<!bone\s)(?<!rib\s)(?<!osseous\s)(?<!lytic\s)(?<!sclerotic\s)(?<!skin\s)lesions?\b"
        r"|neoplasm|tumou?r|carcinoma|malignan\w*|metasta\w*|cavitary"
    ),
    "Edema": (
        r"edema|oedema|(?:vascular|pulmonary|venous)\s+congestion|congestive\s+heart\s+failure|\bchf\b"
        r"|fluid\s+overload|volume\s+overload|peribronchial\s+cuffing|kerley"
    ),
    "Consolidation": r"consolidat\w*",
    "Pneumonia": (
        r"pneumonia|bronchopneumonia|pneumonitis|infectious\s+process|(?<!granulomatous\s)infection"
        r"|(?<!granulomatous\s)infectious"
    ),
    "Atelectasis": r"atelecta\w*|volume\s+loss|(?:lobar|lobe)\s+collapse|collapse\s+of\s+the",
    "Pneumothorax": r"(?:hydro)?pneumothora\w*|pneumothoraces",
    "Pleural Effusion": (
        r"(?<!pericardial\s)effusions?|pleural\s+fluid|hydrothorax|fluid\s+in\s+the\s+(?:pleural|fissure)"
        r"|blunt(?:ing|ed)\s+(?:of\s+)?(?:the\s+)?(?:\w+\s+){0,2}costophrenic|costophrenic\s+(?:angles?\s+)?(?:are\s+|is\s+)?blunt\w*"
    ),
    "Pleural Other": (
        r"pleural\s+(?:thickening|scar\w*|plaques?|calcification\w*|based\s+(?:density|opacity))|fibrothorax"
        r"|pleural\s+parenchymal\s+scar\w*|apical\s+(?:pleural\s+)?(?:cap|thickening)"
    ),
    "Fracture": r"fractur\w*|\bfx\b",
    "Support Devices": (
        r"(?:endotracheal|tracheostomy|chest|feeding|enteric|nasogastric|orogastric|ng|og|et|gastric)\s+tubes?"
        r"|\btubes?\b|catheters?|(?:picc|central|venous|arterial|jugular|subclavian|midline|swan[\s-]ganz|dialysis)"
        r"\s+(?:venous\s+)?(?:line|catheter)s?|\bpicc\b|pacemaker|pacer|defibrillator|\baicd\b|\bicd\b"
        r"|sternotomy|sternal\s+wires|(?:surgical|vascular|mediastinal)\s+clips|\bclips?\b|stents?|port[\s-]?a[\s-]?cath"
        r"|(?:chest\s+wall|subcutaneous|venous|infusion)\s+port|valve\s+(?:replacement|prosthesis)|(?:prosthetic|mechanical)\s+(?:\w+\s+)?valve"
        r"|\bdrains?\b|\bleads?\b|hardware|(?:spinal|surgical)\s+fusion|fixation|\bdevice\b|\bwires?\b|\bcoils?\b"
    ),
}

# Statements that the study is normal: No Finding evidence (used at report level, CheXpert style).
NORMAL_STATEMENTS = re.compile(
    r"no\s+(?:acute|active)\s+(?:cardiopulmonary|pulmonary|cardiac|chest|intrathoracic|osseous)?\s*"
    r"(?:disease|abnormalit\w*|process|findings?|pathology|abnormality)"
    r"|normal\s+(?:chest|examination|exam|study|radiograph)|(?:chest|exam\w*|study)\s+is\s+normal"
    r"|lungs?\s+(?:are|is|remain)\s+(?:grossly\s+)?clear|clear\s+lungs|no\s+(?:radiographic|evidence\s+of)\s+"
    r"(?:acute\s+)?(?:cardiopulmonary|active)\s+(?:disease|process)|^\s*normal\.?\s*$|no\s+acute\s+abnormalit\w*"
    r"|no\s+(?:significant|interval)\s+(?:abnormalit\w*|change)|(?:within|at)\s+normal\s+limits"
    r"|(?:is|are|appears?|remains?)\s+(?:grossly\s+|otherwise\s+)?(?:normal|unremarkable)\b"
    r"|normal\s+(?:heart|cardiac|cardiomediastinal|mediastinal)\s+(?:size|silhouette|contours?)",
    re.IGNORECASE,
)

# Abnormal findings outside the 14 classes. Stated positively they rule out "No Finding" (the study is not
# normal) without adding a label; this is where the IU reports' MeSH "normal" and CheXpert's No Finding differ.
OTHER_ABNORMAL = (
    r"granulom\w*|calcifi\w*|degenerat\w*|scoliosis|kyphosis|spondylosis|osteophyt\w*|emphysema\w*"
    r"|hyperinflat\w*|hyperexpan\w*|hyperlucen\w*|\bcopd\b|obstructive\s+(?:lung|pulmonary)\s+disease|scar\w*"
    r"|cicatri\w*|tortu\w*|atheroscler\w*|hernia|eventration|deformit\w*|fibros\w*|fibrotic|bronchiectasis"
    r"|elevat\w*\s+(?:of\s+the\s+)?(?:right|left)?\s*hemidiaphragm|elevated\s+(?:right|left)\s+hemidiaphragm|cyst\w*"
    r"|postoperative|post-operative|surgical\s+changes|cabg|mastectomy|lobectomy|pneumonectomy|thoracotomy"
    r"|osteopenia|demineraliz\w*|arthritis|arthritic|ectatic|aneurysm|low\s+lung\s+volumes"
)

COMPILED: dict[str, re.Pattern[str]] = {
    label: re.compile(r"\b(?:" + rx + r")", re.IGNORECASE) for label, rx in MENTIONS.items()
}
OTHER_ABNORMAL_RE = re.compile(r"\b(?:" + OTHER_ABNORMAL + r")", re.IGNORECASE)
