"""Generation: what to generate (the spec), the models, the diffusers loop and the background jobs."""
