"""The ModelDeployment API: pydantic models, condition types, labels and the generated CRD."""
