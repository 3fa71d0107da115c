"""The inferencefleet.io/v1alpha1 API models (single source of truth for the CRDs)."""
