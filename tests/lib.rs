//! Cross-service tests live beside this file, one per behaviour; the shared vocabulary is in `services/testkit`.
