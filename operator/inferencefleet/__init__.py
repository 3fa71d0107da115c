"""inferencefleet: a Kubernetes operator that runs and autoscales LLM inference fleets."""

__version__ = "0.1.0"
