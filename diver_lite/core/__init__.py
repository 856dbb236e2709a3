"""The recovery core (SPEC §2): config, schedule, samplers, guidance, noise and pixel preparation. Plain
functions over numbers and arrays; nothing here imports torch."""
