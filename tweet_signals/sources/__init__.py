"""Post sources: files, X API pages, synthetic."""
