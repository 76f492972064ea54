"""One writer per model format: each turns a fixture's functions into model files under the
export entry and returns the manifest cases that feed and fetch them."""
