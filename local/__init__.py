"""The local runtime: `modelplex up` serves ModelDeployments as vLLM processes on this machine."""
