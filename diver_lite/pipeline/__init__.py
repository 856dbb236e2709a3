"""The recovery run: the engine (device + backend), the run state (resume, shards, merge), the batch loop
and `recover()`. With the CLI, the only layer that reads and writes files."""
