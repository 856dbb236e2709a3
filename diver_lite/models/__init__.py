"""Model sources and loading: a `ModelSource` resolved once (folder, hub repo, original DiT checkpoint, tiny),
the diffusers DiT + VAE it loads into, checkpoint conversion and embedder tying."""
