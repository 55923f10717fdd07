"""Probes: seeded, pure transformations of a pair's queries (option order, images, prompts, attacks)."""
