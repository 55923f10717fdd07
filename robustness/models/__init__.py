"""Model adapters (Hugging Face, API providers), the answer cache and their shared interface."""
