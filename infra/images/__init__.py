"""The images the project builds (tools/images/images.yaml): Debian base root filesystems made
with mmdebstrap, the API, ingest and worker images on them, their locks, and the digests GitOps deploys.

`python -m infra.images lock|build|...` (`make images` builds and records the digests)."""
