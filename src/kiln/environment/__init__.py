"""Environment definitions: the model, its identity, its file formats and the curated set."""
