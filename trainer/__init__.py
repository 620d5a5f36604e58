"""The MedFLIP background trainer: `python -m trainer pretrain|finetune ...`."""
