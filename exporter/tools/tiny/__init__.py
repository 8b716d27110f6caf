"""A tiny OpenELM trained here on the King James Bible, so tests and demos need no Hub download."""
