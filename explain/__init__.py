"""Saliency: captum attributions of a model's answer to its image and prompt."""
