"""Portrait in, textured head out: every stage from perception to the baked texture, the pipeline that runs them, and the files it writes."""
