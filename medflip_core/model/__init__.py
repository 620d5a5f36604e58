"""The torch model: a masked timm ViT image tower, a Hugging Face text tower, and the losses."""
