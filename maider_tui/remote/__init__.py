"""The far end of the SSH connection: GPU telemetry (`gpu`) and the vLLM server's API (`vllm`)."""
