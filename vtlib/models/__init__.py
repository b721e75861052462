"""One model per file: ``from vtlib.models.vivit import ViViT`` (Model 1), and so on."""
