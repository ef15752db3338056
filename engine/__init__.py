"""The inference engine: vLLM's installation, the one vLLM argument builder, and model preparation."""
