"""Developer tools, not the runtime: the traffic simulator, the benchmark and the scale-out launcher."""
