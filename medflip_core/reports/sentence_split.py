"""Sentence splitting for radiology reports, and tidying of the `XXXX` de-identification token."""

from __future__ import annotations

import re

# Open-i replaces removed words by XXXX (sometimes glued to letters: "x-XXXX"). We drop the token:
# the text tower has never seen it, and a sentence reads better without it ("There are no XXXX of a
# pleural effusion" -> "There are no of a pleural effusion" keeps every clinical word).
_DEID = re.compile(r"[-\w]*XXXX[-\w]*", re.IGNORECASE)
_ABBREVIATIONS = ("dr", "mr", "mrs", "ms", "approx", "e.g", "i.e", "vs", "no", "fig", "st", "etc", "cf", "pt", "sq")
_SPLIT = re.compile(r"(?<=[.!?;])\s+(?=[A-Z0-9(])|\n\s*\n|(?<=\S)\s+(?=\d{1,2}\.\s+[A-Za-z])")


def clean_deid(text: str) -> str:
    """Remove XXXX tokens and tidy the spaces and punctuation they leave."""
    text = _DEID.sub(" ", text)
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def _is_abbreviation(piece: str) -> bool:
    last = piece.rstrip(".").split()[-1].lower() if piece.split() else ""
    return piece.endswith(".") and last in _ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """Sentences of a report section: periods in decimals ('2.5 cm') and abbreviations ('Dr.') do not
    split, numbered lists ('1. ... 2. ...') do; list numbers are dropped; empty pieces are removed."""
    text = re.sub(r"[ \t]+", " ", text.replace("\r", "")).strip()
    if not text:
        return []
    pieces = _SPLIT.split(text)
    merged: list[str] = []
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        if merged and _is_abbreviation(merged[-1]):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    out = []
    for piece in merged:
        piece = re.sub(r"^\d{1,2}\.\s+", "", piece).strip()
        piece = re.sub(r"\s+", " ", piece)
        if re.search(r"[A-Za-z]{2,}", piece):
            out.append(piece)
    return out
