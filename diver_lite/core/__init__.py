"""The recovery core (docs/algorithm.md): config, schedule, samplers, guidance, noise and pixel preparation. Plain
functions over numbers and arrays; nothing here imports torch."""
