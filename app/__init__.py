"""MedFLIP Studio, the PySide6 desktop application. Never imports torch."""
